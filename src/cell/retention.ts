// Retention of what sessions keep under the state root: task layers (a cache, rebuilt from the
// change set when needed), checkpoints, and per-session scratch. Removed by age (`gc
// --older-than`), when orphaned (the change set is gone), and oldest first down to a size cap
// (`gc --max-size`); never a layer or checkpoint that a cell still on disk started from.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { listCheckpoints } from './checkpoint.js';
import type { StateLayout } from './state.js';

/**
 * Written into the cell dir before its stack is mounted (its layer trees, and the checkpoint
 * they come from); gone with the cell dir.
 */
const STACK_RECORD = 'stack.json';

export function recordStack(cellDir: string, layers: readonly string[]): void {
  fs.writeFileSync(path.join(cellDir, STACK_RECORD), JSON.stringify(layers), { mode: 0o600 });
}

/**
 * Layer trees (and their dirs, and checkpoint dirs) that any cell on disk or any checkpoint
 * uses: a checkpoint pins the session layers it is made of.
 */
function inUse(layout: StateLayout): Set<string> {
  const used = new Set<string>();
  const use = (l: string) => {
    used.add(l);
    used.add(path.dirname(l)); // the layer's dir, or the checkpoint's own dir
    used.add(path.dirname(path.dirname(l))); // the checkpoint of an own layer
  };
  for (const id of fs.existsSync(layout.cells) ? fs.readdirSync(layout.cells) : []) {
    try {
      const layers = JSON.parse(
        fs.readFileSync(path.join(layout.cells, id, STACK_RECORD), 'utf8'),
      ) as string[];
      layers.forEach(use);
    } catch {
      // no stack
    }
  }
  for (const ck of listCheckpoints(layout))
    for (const rel of ck.layers) {
      const tree = path.resolve(layout.root, rel);
      // Its own layers go with it; the ones it pins are another's to keep.
      if (!tree.startsWith(`${path.join(layout.checkpoints, ck.id)}/`)) use(tree);
    }
  return used;
}

interface Candidate {
  dir: string;
  mtimeMs: number;
  /** Removed whatever its age: its change set is gone. */
  orphan: boolean;
}

function candidates(layout: StateLayout): Candidate[] {
  const out: Candidate[] = [];
  const ls = (d: string) => (fs.existsSync(d) ? fs.readdirSync(d) : []);
  for (const name of ls(layout.layers)) {
    const dir = path.join(layout.layers, name);
    const orphan = name.includes('.tmp-') || !fs.existsSync(path.join(layout.changes, name));
    out.push({ dir, mtimeMs: fs.lstatSync(dir).mtimeMs, orphan });
  }
  for (const name of ls(layout.checkpoints)) {
    const dir = path.join(layout.checkpoints, name);
    out.push({ dir, mtimeMs: fs.lstatSync(dir).mtimeMs, orphan: name.endsWith('.tmp') });
  }
  return out.sort((a, b) => a.mtimeMs - b.mtimeMs);
}

function sizeOf(dirs: string[]): number {
  if (!dirs.length) return 0;
  // One du for all: hard links shared by a checkpoint and its layers count once.
  const out = execFileSync('du', ['-scb', ...dirs], { encoding: 'utf8' });
  return Number(/^(\d+)\s+total$/m.exec(out)?.[1] ?? 0);
}

export interface RetentionResult {
  removed: string[];
  bytes: number;
}

/**
 * Removes orphaned layers, layers and checkpoints older than `olderThanMs`, and then the oldest
 * of the rest while what sessions and change sets keep is above `maxBytes`.
 */
export function gcSessionState(
  layout: StateLayout,
  o: { olderThanMs?: number; maxBytes?: number },
): RetentionResult {
  let used = inUse(layout);
  const removed: string[] = [];
  const now = Date.now();
  const sweep = (cs: Candidate[]) =>
    cs.filter((c) => {
      const old = o.olderThanMs !== undefined && now - c.mtimeMs > o.olderThanMs;
      if (used.has(c.dir) || !(c.orphan || old)) return true;
      fs.rmSync(c.dir, { recursive: true, force: true });
      removed.push(c.dir);
      return false;
    });
  let rest = sweep(candidates(layout));
  if (removed.some((d) => d.startsWith(`${layout.checkpoints}/`))) {
    // A checkpoint removed frees the layers it pinned.
    used = inUse(layout);
    rest = sweep(rest);
  }
  const kept = () => [...rest.map((c) => c.dir), layout.changes];
  let bytes = sizeOf(kept());
  if (o.maxBytes !== undefined) {
    while (bytes > o.maxBytes) {
      const victim = rest.find((c) => !used.has(c.dir));
      if (!victim) break;
      fs.rmSync(victim.dir, { recursive: true, force: true });
      removed.push(victim.dir);
      rest = rest.filter((c) => c !== victim);
      // A checkpoint removed frees the layers it pinned.
      used = inUse(layout);
      bytes = sizeOf(kept());
    }
  }
  // Session scratch with no unapplied change set behind it.
  for (const name of fs.existsSync(layout.sessions) ? fs.readdirSync(layout.sessions) : []) {
    if (!fs.existsSync(path.join(layout.sessions, name, 'members.json')))
      fs.rmSync(path.join(layout.sessions, name), { recursive: true, force: true });
  }
  return { removed, bytes };
}
