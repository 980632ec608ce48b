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
  readdirSync,
  readFileSync,
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

/** Most commits listed per repository; the rest are counted. */
const MAX_COMMITS = 200;
/** Ref files larger than this are not refs. */
const MAX_REF_BYTES = 4096;
const MAX_PACKED_REFS_BYTES = 64 * 1024 * 1024;

interface GitCommitSummary {
  hash: string;
  author: string;
  subject: string;
  files: Array<{ status: 'A' | 'M' | 'D' | 'T'; path: string; hidden: boolean }>;
}

interface GitRefChange {
  ref: string;
  old?: string;
  new?: string;
}

interface GitHistorySummary {
  /** Project-relative git dir ('.git', 'vendor/x/.git'). */
  gitDir: string;
  commits: GitCommitSummary[];
  moreCommits: number;
  refs: GitRefChange[];
  indexChanged: boolean;
  objectFiles: number;
  /** Other files of the git dir the change set touches (logs, COMMIT_EDITMSG, ...). */
  other: string[];
  /** Why the history could not be read, when it could not. */
  error?: string;
}

/** Names that sit directly in a git dir: where a submodule's name under modules/ ends. */
const GIT_DIR_ENTRIES = new Set([
  'objects',
  'refs',
  'HEAD',
  'index',
  'logs',
  'packed-refs',
  'config',
  'hooks',
  'info',
  'modules',
  'worktrees',
  'description',
  'branches',
  'COMMIT_EDITMSG',
  'ORIG_HEAD',
  'FETCH_HEAD',
  'MERGE_HEAD',
  'shallow',
]);

/** The git dir an entry lies in ('.git', 'a/.git', '.git/modules/lib'), or undefined. */
function gitDirOfPath(rel: string): string | undefined {
  const parts = rel.split('/');
  let i = parts.indexOf('.git');
  if (i < 0) return undefined;
  // A submodule's git dir: .git/modules/<name, possibly with slashes>/, nested as deep as needed.
  while (parts[i + 1] === 'modules' && parts.length > i + 3) {
    let j = i + 2;
    while (j + 1 < parts.length && !GIT_DIR_ENTRIES.has(parts[j + 1]!)) j++;
    if (j + 1 >= parts.length) break;
    i = j;
  }
  return parts.slice(0, i + 1).join('/');
}

type Refs = Map<string, string>;
const HEX = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

function readSmall(abs: string, max: number): string | undefined {
  const st = lstatSync(abs, { throwIfNoEntry: false });
  if (!st?.isFile() || st.size > max) return undefined;
  return readFileSync(abs, 'utf8');
}

function parsePacked(text: string | undefined, into: Refs): void {
  for (const line of (text ?? '').split('\n')) {
    const m = /^([0-9a-f]{40,64}) (refs\/\S+)$/.exec(line);
    if (m && HEX.test(m[1]!)) into.set(m[2]!, m[1]!);
  }
}

function refValue(text: string | undefined): string | undefined {
  const t = (text ?? '').trim();
  if (HEX.test(t)) return t;
  const sym = /^ref: (refs\/\S+)$/.exec(t);
  return sym ? `→ ${sym[1]}` : undefined;
}

/** Loose refs below `<gitDir>/refs`, as git would read them (loose outranks packed). */
function walkLoose(abs: string, rel: string, into: Refs, depth = 0): void {
  if (depth > 32) return;
  for (const d of readdirSync(abs, { withFileTypes: true })) {
    const r = `${rel}/${d.name}`;
    if (d.isDirectory()) walkLoose(`${abs}/${d.name}`, r, into, depth + 1);
    else if (d.isFile()) {
      const v = refValue(readSmall(`${abs}/${d.name}`, MAX_REF_BYTES));
      if (v) into.set(r, v);
    }
  }
}

interface RefFiles {
  packed: Refs;
  /** Loose refs and HEAD: they outrank packed ones. */
  loose: Refs;
}

function projectRefs(projectDir: string, gitDir: string): RefFiles {
  const packed: Refs = new Map();
  const loose: Refs = new Map();
  const abs = path.join(projectDir, gitDir);
  parsePacked(readSmall(`${abs}/packed-refs`, MAX_PACKED_REFS_BYTES), packed);
  if (lstatSync(`${abs}/refs`, { throwIfNoEntry: false })?.isDirectory())
    walkLoose(`${abs}/refs`, 'refs', loose);
  const head = refValue(readSmall(`${abs}/HEAD`, MAX_REF_BYTES));
  if (head) loose.set('HEAD', head);
  return { packed, loose };
}

/** The ref files after the change set: the project's, with those it writes replaced. */
function changedRefs(
  old: RefFiles,
  gitDir: string,
  entries: ChangeEntry[],
  files: string,
): RefFiles {
  const stored = (e: ChangeEntry) =>
    e.kind === 'delete' || e.type !== 'file'
      ? undefined
      : readSmall(`${files}/${e.sha256}`, MAX_PACKED_REFS_BYTES);
  const packed: Refs = new Map(old.packed);
  const loose: Refs = new Map(old.loose);
  for (const e of entries) {
    const rel = e.path.slice(gitDir.length + 1);
    if (rel === 'packed-refs') {
      packed.clear();
      parsePacked(stored(e), packed);
      continue;
    }
    if ((rel !== 'HEAD' && !rel.startsWith('refs/')) || e.type === 'dir') continue;
    // A loose ref below a deleted directory is listed as its own deletion.
    loose.delete(rel);
    const v = refValue(stored(e));
    if (v) loose.set(rel, v);
  }
  return { packed, loose };
}

const merged = (f: RefFiles): Refs => new Map([...f.packed, ...f.loose]);

const short = (v: string | undefined) => (v && !v.startsWith('→') ? v.slice(0, 12) : v?.slice(2));

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

/** Control characters shown as \xNN: names and subjects come from the cell. */
function esc(s: string): string {
  return s.replace(
    // eslint-disable-next-line no-control-regex
    /[\x00-\x1f\x7f-\x9f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

const WORDS = { A: 'adds', M: 'modifies', D: 'deletes', T: 'changes the type of' } as const;

/** The summaries as text, one block per git dir; `# ` lines so a diff reader can skip them. */
function renderGitHistory(list: GitHistorySummary[]): string {
  let out = '';
  for (const s of list) {
    out += `# git history of ${esc(s.gitDir)} (what applying the change set would do; object files are not listed)\n`;
    if (s.error) out += `#   cannot read the new history: ${esc(s.error)}\n`;
    for (const c of s.commits) {
      out += `#   commit ${c.hash.slice(0, 12)}  ${esc(c.author)}  ${esc(c.subject)}\n`;
      for (const f of c.files) {
        const warn =
          f.hidden && f.status !== 'A'
            ? '   <- hidden from the cell: the task never saw this file'
            : '';
        out += `#     ${WORDS[f.status]} ${esc(f.path)}${warn}\n`;
      }
    }
    if (s.moreCommits) out += `#   ... and ${s.moreCommits} more commit(s)\n`;
    for (const r of s.refs) {
      const name = esc(r.ref);
      if (!r.old) out += `#   ${refWord(r.ref)} created: ${name} at ${esc(short(r.new)!)}\n`;
      else if (!r.new)
        out += `#   ${refWord(r.ref)} deleted: ${name} (was ${esc(short(r.old)!)})\n`;
      else
        out += `#   ${refWord(r.ref)} moved: ${name} ${esc(short(r.old)!)} -> ${esc(short(r.new)!)}\n`;
    }
    if (s.indexChanged)
      out +=
        "#   the index (staging area) changed; in it, hidden tracked paths carry skip-worktree (the cell's view): after applying it, clear that with git update-index --no-skip-worktree -- PATHS\n";
    if (s.objectFiles)
      out += `#   ${s.objectFiles} object file(s) (the content of the commits above)\n`;
    if (s.other.length) {
      const shown = s.other.slice(0, 10).map(esc).join(', ');
      out += `#   other git files: ${shown}${s.other.length > 10 ? ` (+${s.other.length - 10} more)` : ''}\n`;
    }
  }
  return out;
}

function refWord(ref: string): string {
  if (ref === 'HEAD') return 'HEAD (checked-out branch)';
  if (ref.startsWith('refs/heads/')) return 'branch';
  if (ref.startsWith('refs/tags/')) return 'tag';
  return 'ref';
}

/** One line per fact, for the audit trail's fs.change events (the report's "Changed"). */
function gitHistoryLines(list: GitHistorySummary[]): string[] {
  return renderGitHistory(list)
    .split('\n')
    .filter((l) => l.startsWith('#   '))
    .map((l) => l.slice(4).trim());
}

/** True when a commit of the summary deletes or modifies a path hidden from the cell. */
function touchesHidden(list: GitHistorySummary[]): string[] {
  return list.flatMap((s) =>
    s.commits.flatMap((c) =>
      c.files
        .filter((f) => f.hidden && f.status !== 'A')
        .map((f) => `${c.hash.slice(0, 12)} ${WORDS[f.status]} ${f.path}`),
    ),
  );
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
