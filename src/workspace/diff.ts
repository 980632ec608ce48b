// `nanocell diff`: each change against the project's current file, as a unified diff (jsdiff).
// Streams: each entry's diff is handed to the writer as soon as it is made, so memory stays
// bounded by one file (MAX_TEXT_BYTES) whatever the number of changes. Names and contents come
// from the cell: paths are quoted and controls escaped (util/display.ts), so no name or line
// can inject a terminal escape or fake a line of the diff.
import { closeSync, readSync } from 'node:fs';
import { createTwoFilesPatch } from 'diff';
import { openRegularNoFollow } from './fsSafe.js';
import { gitHistorySection } from './gitHistory.js';
import { gitIgnoredPaths, gitIgnoreNote } from './gitIgnore.js';
import { pendingEntries } from './changeFate.js';
import { loadChangeSet, type ChangeEntry, type Manifest } from './manifest.js';
import { lstatNoSymlinkComponents, relPathProblem } from './paths.js';
import { escapeContent, escapeText, quotePath } from '../util/display.js';

/** Text files larger than this are summarised like binary ones. */
const MAX_TEXT_BYTES = 1024 * 1024;

type Content = { bytes: Buffer; size: number } | { size: number; tooLarge: true } | undefined;

function readCapped(abs: string): Content {
  const fd = openRegularNoFollow(abs);
  try {
    const buf = Buffer.alloc(MAX_TEXT_BYTES + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > MAX_TEXT_BYTES) return { size: n, tooLarge: true };
    }
    return { bytes: buf.subarray(0, n), size: n };
  } finally {
    closeSync(fd);
  }
}

function projectFile(projectDir: string, rel: string): Content | string {
  if (relPathProblem(rel)) return 'invalid path';
  try {
    const st = lstatNoSymlinkComponents(projectDir, rel);
    if (!st) return undefined;
    if (!st.isFile()) return undefined;
    return readCapped(`${projectDir}/${rel}`);
  } catch (e) {
    return (e as Error).message;
  }
}

function asText(c: Content): string | undefined {
  if (!c) return '';
  if ('tooLarge' in c) return undefined;
  if (c.bytes.includes(0)) return undefined;
  const text = c.bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(c.bytes) ? text : undefined;
}

const octal = (m: number | undefined) => (m ?? 0).toString(8).padStart(3, '0');

/**
 * The old and new text of a changed file (the dashboard's side-by-side view), or why there is
 * none: binary or too large (`binary`), or the project's file unreadable (`error`).
 */
export function entryTexts(
  changeDir: string,
  projectDir: string,
  e: ChangeEntry,
): { before: string; after: string } | { binary: true } | { error: string } {
  const before = projectFile(projectDir, e.path);
  if (typeof before === 'string') return { error: before };
  const after: Content =
    e.kind === 'delete' || e.type !== 'file'
      ? undefined
      : readCapped(`${changeDir}/files/${e.sha256}`);
  const oldText = asText(before);
  const newText = asText(after);
  if (oldText === undefined || newText === undefined) return { binary: true };
  return { before: oldText, after: newText };
}

function fileDiff(changeDir: string, projectDir: string, e: ChangeEntry): string {
  const p = quotePath(e.path);
  const before = projectFile(projectDir, e.path);
  if (typeof before === 'string')
    return `# ${p}: cannot read the project's file (${escapeText(before)})\n`;
  const after: Content =
    e.kind === 'delete' ? undefined : readCapped(`${changeDir}/files/${e.sha256}`);
  const oldText = asText(before);
  const newText = asText(after);
  if (oldText === undefined || newText === undefined) {
    return `Binary file ${p} changed (${before?.size ?? 0} bytes → ${after?.size ?? 0} bytes)\n`;
  }
  const patch = createTwoFilesPatch(
    // jsdiff quotes unusual names itself; the line pass below escapes what it leaves.
    before ? `a/${e.path}` : '/dev/null',
    after ? `b/${e.path}` : '/dev/null',
    oldText,
    newText,
    undefined,
    undefined,
    { context: 3 },
  );
  // Drop jsdiff's "=====" banner line; keep the ---/+++ headers. Content lines keep tabs.
  return patch.slice(patch.indexOf('---')).split('\n').map(escapeContent).join('\n');
}

function entryDiff(changeDir: string, projectDir: string, e: ChangeEntry): string {
  const p = quotePath(e.path);
  const head = `diff --nanocell ${quotePath(`a/${e.path}`)} ${quotePath(`b/${e.path}`)}\n`;
  if (e.type === 'dir') {
    if (e.kind === 'delete') return `${head}deleted directory ${p}\n`;
    if (e.kind === 'mode')
      return `${head}old mode ${octal(e.base.mode)}\nnew mode ${octal(e.mode)}\n`;
    return `${head}new directory ${p} (mode ${octal(e.mode)})\n`;
  }
  if (e.type === 'symlink') {
    if (e.kind === 'delete')
      return `${head}deleted symlink ${p} -> ${quotePath(e.base.target ?? '?')}\n`;
    const was = e.base.type === 'symlink' ? ` (was -> ${quotePath(e.base.target ?? '?')})` : '';
    return `${head}symlink ${p} -> ${quotePath(e.target ?? '?')}${was}\n`;
  }
  if (e.kind === 'mode') {
    return `${head}old mode ${octal(e.base.mode)}\nnew mode ${octal(e.mode)}\n`;
  }
  let out = head;
  if (e.kind === 'add') out += `new file mode ${octal(e.mode)}\n`;
  else if (e.kind === 'delete') out += `deleted file mode ${octal(e.base.mode)}\n`;
  else if (e.base.mode !== undefined && (e.base.mode & 0o777) !== e.mode) {
    out += `old mode ${octal(e.base.mode)}\nnew mode ${octal(e.mode)}\n`;
  }
  if (e.modeMasked) out += '# setuid/setgid/sticky bits were dropped\n';
  return out + fileDiff(changeDir, projectDir, e);
}

/** The whole change set as one unified diff, refused changes listed first, piece by piece. */
export function writeDiff(
  changeDir: string,
  projectDir: string,
  write: (text: string) => void,
  /** The manifest when the caller has loaded it already: one copy in memory, not two. */
  loaded?: Manifest,
): void {
  const { manifest: m, applied } = pendingEntries(
    changeDir,
    loaded ?? loadChangeSet(changeDir).manifest,
  );
  if (m.status !== 'ok') {
    write(`# change set of task ${m.taskId} was refused: ${escapeText(m.reason ?? '')}\n`);
    return;
  }
  for (const r of m.refused)
    write(`# refused (never applied): ${quotePath(r.path)}: ${escapeText(r.reason)}\n`);
  for (const p of applied) write(`# already applied (apply --only): ${quotePath(p)}\n`);
  if (m.ignored?.count) {
    write(
      `# ${m.ignored.count} generated path(s) left out by workspace.ignore (e.g. ${m.ignored.examples.map(quotePath).join(', ')})\n`,
    );
  }
  const ignored = gitIgnoredPaths(projectDir, m);
  write(gitIgnoreNote(ignored));
  const git = gitHistorySection(changeDir, projectDir, m);
  write(git.text);
  const entries = [...m.entries]
    .filter((e) => !git.covers(e.path) && !ignored.has(e.path))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const e of entries) write(entryDiff(changeDir, projectDir, e));
}

/** The whole diff as one string (small change sets; the CLI streams with writeDiff). */
export function renderDiff(changeDir: string, projectDir: string): string {
  const parts: string[] = [];
  writeDiff(changeDir, projectDir, (t) => parts.push(t));
  return parts.join('');
}
