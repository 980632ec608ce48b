// The change set views and actions of the dashboard's API: a page of the entries (with what an
// `apply --only` already wrote), one file's side-by-side diff, the patch, and apply (all, or
// the chosen paths through applyChosen: the same checks, lock and journal), discard.
import fs from 'node:fs';
import path from 'node:path';
import { diffLines } from 'diff';
import { applyChangeSet } from '../workspace/apply.js';
import { applyChosen } from '../workspace/applyChosen.js';
import { describeFate, pendingEntries, readFate } from '../workspace/changeFate.js';
import { entryTexts, renderDiff } from '../workspace/diff.js';
import { discardChangeSet } from '../workspace/discard.js';
import { loadChangeSet } from '../workspace/manifest.js';
import { NanocellError } from '../util/errors.js';

const MAX_PAGE = 200;

export function changesPage(stateRoot: string, id: string, dir: string, q: URLSearchParams) {
  if (!fs.existsSync(dir)) {
    const fate = readFate(stateRoot, id);
    return { exists: false, fate: fate ? describeFate(fate) : 'no change set (nothing changed)' };
  }
  const { manifest: m, applied } = pendingEntries(dir, loadChangeSet(dir).manifest);
  const offset = Math.max(0, Number(q.get('offset') ?? 0) || 0);
  return {
    exists: true,
    status: m.status,
    reason: m.reason,
    projectDir: m.projectDir,
    total: m.entries.length,
    offset,
    entries: m.entries.slice(offset, offset + MAX_PAGE).map((e) => ({
      path: e.path,
      kind: e.kind,
      type: e.type,
      size: e.size,
    })),
    refused: m.refused.slice(0, MAX_PAGE),
    refusedTotal: m.refused.length,
    applied: applied.slice(0, MAX_PAGE),
    appliedTotal: applied.length,
  };
}

/** POST apply[?only=PATH...]: all that is left, or the chosen paths. */
export function applyAction(dir: string, only: string[]) {
  const cs = loadChangeSet(dir);
  const project = fs.realpathSync(cs.manifest.projectDir);
  const r = only.length
    ? applyChosen(dir, project, only, { force: false })
    : applyChangeSet(dir, project, { force: false });
  if (r.left === 0) discardChangeSet(dir, { record: false });
  return { applied: r.applied, left: r.left };
}

export function patchOf(dir: string): string {
  return renderDiff(dir, loadChangeSet(dir).manifest.projectDir);
}

type Row = { left?: string; right?: string; op: 'same' | 'del' | 'add' | 'mod' };

/** Side-by-side rows of one file: removed and added runs paired line by line. */
export function fileDiff(dir: string, rel: string) {
  const { manifest: m } = loadChangeSet(dir);
  const e = m.entries.find((x) => x.path === rel);
  if (!e)
    throw new NanocellError(
      `no change to ${JSON.stringify(rel)} in this change set`,
      'pick a file from the list',
      'USAGE',
    );
  if (e.type !== 'file')
    return { path: rel, kind: e.kind, type: e.type, target: e.target, rows: [] };
  const t = entryTexts(dir, path.resolve(m.projectDir), e);
  if (!('before' in t)) return { path: rel, kind: e.kind, type: e.type, ...t, rows: [] };
  const rows: Row[] = [];
  let dels: string[] = [];
  const flush = (adds: string[]) => {
    const n = Math.max(dels.length, adds.length);
    for (let i = 0; i < n; i++) {
      const left = dels[i];
      const right = adds[i];
      rows.push({
        ...(left !== undefined ? { left } : {}),
        ...(right !== undefined ? { right } : {}),
        op: left === undefined ? 'add' : right === undefined ? 'del' : 'mod',
      });
    }
    dels = [];
  };
  for (const part of diffLines(t.before, t.after)) {
    const lines = part.value.replace(/\n$/, '').split('\n');
    if (part.removed) dels.push(...lines);
    else if (part.added) flush(lines);
    else {
      flush([]);
      for (const l of lines) rows.push({ left: l, right: l, op: 'same' });
    }
  }
  flush([]);
  return { path: rel, kind: e.kind, type: e.type, rows };
}
