// What a change set does to a repository's history, in human terms: commits added (hash, author,
// subject, the files each adds, modifies and deletes), refs created, moved and deleted, HEAD
// switched, the index changed. Computed on the host with real git, read-only, in a git dir made
// here: its config is nanocell's, its objects are the project's (through alternates) plus the
// object files the change set brings, its refs are parsed by this module. Nothing of the cell's
// .git/config, hooks, attributes or info is ever read, so no hostile setting (fsmonitor, pager,
// diff drivers, filters) can run anything on the host.
import {
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
  copyFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import { hostGitSync } from './hostGit.js';
import type { ChangeEntry, Manifest } from './manifest.js';
import { isSameOrBelow } from './paths.js';
import { changedRefs, gitDirOfPath, HEX, merged, projectRefs } from './gitRefs.js';
import {
  esc,
  gitHistoryLines,
  renderGitHistory,
  touchesHidden,
  type GitCommitSummary,
  type GitHistorySummary,
} from './gitHistoryText.js';

/** Most commits listed per repository; the rest are counted. */
const MAX_COMMITS = 200;
/** Summarises every git dir a change set touches. */
function summarizeGitHistory(
  changeDir: string,
  projectDir: string,
  m: Manifest,
): GitHistorySummary[] {
  const byDir = new Map<string, ChangeEntry[]>();
  for (const e of m.entries) {
    const g = gitDirOfPath(e.path);
    if (g) byDir.set(g, [...(byDir.get(g) ?? []), e]);
  }
  const out: GitHistorySummary[] = [];
  for (const [gitDir, entries] of byDir) {
    out.push(summarizeOne(changeDir, projectDir, gitDir, entries, m.hidden));
  }
  return out;
}

function summarizeOne(
  changeDir: string,
  projectDir: string,
  gitDir: string,
  entries: ChangeEntry[],
  hidden: string[],
): GitHistorySummary {
  const s: GitHistorySummary = {
    gitDir,
    commits: [],
    moreCommits: 0,
    refs: [],
    indexChanged: false,
    objectFiles: 0,
    other: [],
  };
  const files = `${changeDir}/files`;
  const objects: ChangeEntry[] = [];
  for (const e of entries) {
    const rel = e.path.slice(gitDir.length + 1);
    if (rel === 'index') s.indexChanged = true;
    else if (rel.startsWith('objects/')) {
      if (e.type === 'file') {
        s.objectFiles++;
        if (e.kind !== 'delete') objects.push(e);
      }
    } else if (rel !== 'HEAD' && rel !== 'packed-refs' && !rel.startsWith('refs/')) {
      if (e.type !== 'dir' && rel) s.other.push(rel);
    }
  }
  const oldFiles = projectRefs(projectDir, gitDir);
  const old = merged(oldFiles);
  const now = merged(changedRefs(oldFiles, gitDir, entries, files));
  for (const ref of new Set([...old.keys(), ...now.keys()])) {
    if (old.get(ref) !== now.get(ref)) s.refs.push({ ref, old: old.get(ref), new: now.get(ref) });
  }
  s.refs.sort((a, b) => (a.ref === 'HEAD' ? -1 : b.ref === 'HEAD' ? 1 : a.ref < b.ref ? -1 : 1));
  const tips = [
    ...new Set(s.refs.map((r) => r.new).filter((v): v is string => !!v && HEX.test(v))),
  ];
  if (!tips.length) return s;
  const work = mkdtempSync(path.join(os.tmpdir(), 'nanocell-githist-'));
  try {
    const repoDir = prepareRepo(work, projectDir, gitDir, objects, files);
    const base = [...new Set([...old.values()].filter((v) => HEX.test(v)))];
    readCommits(repoDir, tips, base, s, repoPrefixOf(gitDir), hidden);
  } catch (e) {
    s.error = (e as Error).message.split('\n')[0];
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return s;
}

/** Work tree of a git dir, as a project-relative prefix ('' or 'a/b/'). */
function repoPrefixOf(gitDir: string): string {
  const m = /^(.*?)\.git\/modules\/(.+)$/.exec(gitDir);
  if (m) return `${m[1]}${m[2]!.replace(/\/modules\//g, '/')}/`;
  const root = path.posix.dirname(gitDir);
  return root === '.' ? '' : `${root}/`;
}

/**
 * A bare git dir nanocell writes: its own config and HEAD, the project's objects through
 * alternates, and the change set's object files linked (or copied) in. No refs: tips are
 * passed by hash.
 */
function prepareRepo(
  work: string,
  projectDir: string,
  gitDir: string,
  objects: ChangeEntry[],
  files: string,
): string {
  const repo = `${work}/repo.git`;
  mkdirSync(`${repo}/objects/info`, { recursive: true, mode: 0o700 });
  mkdirSync(`${repo}/refs`, { mode: 0o700 });
  writeFileSync(`${repo}/HEAD`, 'ref: refs/heads/none\n');
  const sha256 = objectFormat(projectDir, gitDir) === 'sha256';
  writeFileSync(
    `${repo}/config`,
    `[core]\n\trepositoryformatversion = ${sha256 ? 1 : 0}\n\tbare = true\n${sha256 ? '[extensions]\n\tobjectformat = sha256\n' : ''}`,
  );
  const projectObjects = path.join(projectDir, gitDir, 'objects');
  if (lstatSync(projectObjects, { throwIfNoEntry: false })?.isDirectory())
    writeFileSync(`${repo}/objects/info/alternates`, `${projectObjects}\n`);
  const gitPrefix = `${gitDir}/objects/`;
  for (const e of objects) {
    const rel = e.path.slice(gitPrefix.length);
    // Loose objects (xx/yyyy) and packs; nothing else the cell put under objects/ is read.
    if (!/^([0-9a-f]{2}\/[0-9a-f]{38,62}|pack\/pack-[0-9a-f]{40,64}\.(pack|idx))$/.test(rel))
      continue;
    const dest = `${repo}/objects/${rel}`;
    mkdirSync(path.dirname(dest), { recursive: true, mode: 0o700 });
    try {
      linkSync(`${files}/${e.sha256}`, dest);
    } catch {
      copyFileSync(`${files}/${e.sha256}`, dest);
    }
  }
  return repo;
}

function objectFormat(projectDir: string, gitDir: string): string {
  const cfg = path.join(projectDir, gitDir, 'config');
  if (!lstatSync(cfg, { throwIfNoEntry: false })?.isFile()) return 'sha1';
  // `git config --file` only parses the file (the project's own, never the cell's).
  const r = hostGitSync(['config', '--file', cfg, '--get', 'extensions.objectformat'], {
    gitDir: '/nonexistent',
  });
  return r.ok ? r.stdout.trim() : 'sha1';
}

function readCommits(
  repo: string,
  tips: string[],
  base: string[],
  s: GitHistorySummary,
  prefix: string,
  hidden: string[],
): void {
  const list = hostGitSync(['rev-list', '--topo-order', '--stdin'], {
    gitDir: repo,
    input: [...tips, ...base.map((b) => `^${b}`)].join('\n') + '\n',
  });
  if (!list.ok) throw new Error(`git rev-list failed: ${list.stderr.trim()}`);
  const hashes = list.stdout.split('\n').filter((h) => HEX.test(h));
  s.moreCommits = Math.max(0, hashes.length - MAX_COMMITS);
  const isHidden = (p: string) => hidden.some((h) => isSameOrBelow(`${prefix}${p}`, h));
  for (const hash of hashes.slice(0, MAX_COMMITS)) {
    const meta = hostGitSync(['show', '-s', '--format=%an <%ae>%x00%s', hash], { gitDir: repo });
    if (!meta.ok) throw new Error(`git show failed: ${meta.stderr.trim()}`);
    const [author = '', subject = ''] = meta.stdout.replace(/\n$/, '').split('\0');
    const tree = hostGitSync(
      [
        'diff-tree',
        '-r',
        '-z',
        '--no-renames',
        '--root',
        '--name-status',
        '-m',
        '--first-parent',
        hash,
      ],
      { gitDir: repo },
    );
    if (!tree.ok) throw new Error(`git diff-tree failed: ${tree.stderr.trim()}`);
    const parts = tree.stdout.split('\0');
    const files: GitCommitSummary['files'] = [];
    // The first field is the commit itself; then status, path pairs.
    for (let i = HEX.test(parts[0] ?? '') ? 1 : 0; i + 1 < parts.length; i += 2) {
      const st = parts[i]!.trim()[0] as GitCommitSummary['files'][number]['status'];
      if (!'AMDT'.includes(st)) continue;
      files.push({ status: st, path: parts[i + 1]!, hidden: isHidden(parts[i + 1]!) });
    }
    s.commits.push({ hash, author, subject, files });
  }
}

/** For `nanocell diff`: the history text, and which entries it stands for (not shown raw). */
export function gitHistorySection(
  changeDir: string,
  projectDir: string,
  m: Manifest,
): { text: string; covers: (rel: string) => boolean } {
  const list = summarizeGitHistory(changeDir, projectDir, m);
  return { text: renderGitHistory(list), covers: (rel) => gitDirOfPath(rel) !== undefined };
}

/**
 * For the audit trail (the report's "Changed"): entries in a git dir are not listed one by one;
 * each fact of the history summary becomes one fs.change event named `<gitDir>: <fact>`.
 */
export function gitChangeEvents(
  changeDir: string,
  projectDir: string,
  m: Manifest,
): {
  covers: (rel: string) => boolean;
  events: Array<{ path: string; kind: 'added' | 'modified' | 'deleted' }>;
} {
  const covers = (rel: string) => gitDirOfPath(rel) !== undefined;
  if (!m.entries.some((e) => covers(e.path))) return { covers, events: [] };
  const events: Array<{ path: string; kind: 'added' | 'modified' | 'deleted' }> = [];
  for (const s of summarizeGitHistory(changeDir, projectDir, m)) {
    for (const line of gitHistoryLines([s])) {
      const kind = /^(deletes|.* deleted:)/.test(line)
        ? 'deleted'
        : /^(adds|.* created:)/.test(line)
          ? 'added'
          : 'modified';
      events.push({ path: `${s.gitDir}: ${line}`, kind });
    }
  }
  return { covers, events };
}

/**
 * Apply's guard: a commit that deletes or changes a file the cell never saw is not the agent's
 * honest work (git in the cell sees hidden files as unchanged, so it takes a deliberate step).
 */
export function assertHistoryKeepsHidden(changeDir: string, projectDir: string, m: Manifest): void {
  if (!m.entries.some((e) => gitDirOfPath(e.path))) return;
  const bad = touchesHidden(summarizeGitHistory(changeDir, projectDir, m));
  if (!bad.length) return;
  throw new NanocellError(
    `the change set's git history touches ${bad.length} path(s) hidden from the cell (first: commit ${esc(bad[0]!)})`,
    'review it with nanocell diff, then discard the change set (nanocell discard TASK)',
    'WORKSPACE',
  );
}
