// A change set as an overlay lower layer, so a later task of the session starts from it at the
// cost of one more lowerdir: files, dirs and symlinks as the task left them, a whiteout (char
// device 0/0) per deletion. Built once per task, into a temporary dir renamed into place, and
// reused by every task that stacks on it.
import {
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  renameSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import path from 'node:path';
import { runCommand } from '../util/run.js';
import { NanocellError } from '../util/errors.js';
import type { ChangeSet } from './manifest.js';
import { parentOf, relPathProblem, selfAndAncestors } from './paths.js';

/** The layer's tree: `<layerDir>/tree`; its presence means the layer is complete. */
const layerTree = (layerDir: string): string => path.join(layerDir, 'tree');

/**
 * Builds the layer of `cs` at `layerDir` unless it is there. `below` are the dirs under it,
 * topmost first (earlier layers, then the project): a parent dir takes its mode from there, and
 * a mode-only change copies the content it keeps from there.
 */
export async function ensureLayer(
  cs: ChangeSet,
  layerDir: string,
  below: string[],
): Promise<string> {
  const tree = layerTree(layerDir);
  if (existsSync(tree)) return tree;
  const tmp = `${layerDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(path.dirname(layerDir), { recursive: true, mode: 0o700 });
  mkdirSync(tmp, { mode: 0o700 });
  try {
    await writeLayer(cs, `${tmp}/tree`, below, `${tmp}/whiteout`);
    rmSync(`${tmp}/whiteout`, { force: true });
    try {
      renameSync(tmp, layerDir);
    } catch (e) {
      // Another task starting from the same one built it first: use theirs.
      if (!existsSync(tree)) throw e;
      rmSync(tmp, { recursive: true, force: true });
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return tree;
}

function findBelow(below: string[], rel: string): { abs: string; mode: number } | undefined {
  for (const b of below) {
    const abs = path.join(b, rel);
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (st) return { abs, mode: st.mode & 0o7777 };
  }
  return undefined;
}

async function writeLayer(
  cs: ChangeSet,
  tree: string,
  below: string[],
  proto: string,
): Promise<void> {
  const m = cs.manifest;
  mkdirSync(tree, { mode: findBelow(below, '.')?.mode ?? 0o755 });
  chmodSync(tree, findBelow(below, '.')?.mode ?? 0o755);
  const made = new Set<string>();
  const parentDirs = (rel: string) => {
    for (const dir of selfAndAncestors(parentOf(rel) || '.').filter((d) => d !== '.')) {
      if (made.has(dir)) continue;
      made.add(dir);
      const mode = findBelow(below, dir)?.mode ?? 0o755;
      mkdirSync(`${tree}/${dir}`, { mode });
      chmodSync(`${tree}/${dir}`, mode);
    }
  };
  let haveProto = false;
  // Parents before children, so a dir entry sets its own mode over a parent made for a child.
  const entries = [...m.entries].sort(
    (a, b) => a.path.split('/').length - b.path.split('/').length,
  );
  for (const e of entries) {
    const problem = relPathProblem(e.path);
    if (problem)
      throw new NanocellError(
        `change set entry ${JSON.stringify(e.path)} ${problem}`,
        'discard the change set',
        'STATE',
      );
    const dest = `${tree}/${e.path}`;
    if (e.kind === 'delete') {
      // A deletion inside a dir the task deleted or replaced is covered by that ancestor.
      if (coveredByAncestor(tree, e.path)) continue;
      parentDirs(e.path);
      if (lstatSync(dest, { throwIfNoEntry: false })) continue;
      if (!haveProto) {
        const r = await runCommand('mknod', ['-m', '000', proto, 'c', '0', '0']);
        if (r.exitCode !== 0) {
          throw new NanocellError(
            `cannot create an overlay whiteout for a session layer: ${r.stderr.trim() || r.message}`,
            'stacked tasks need Linux 5.8 or newer, or root',
            'HOST',
          );
        }
        haveProto = true;
      }
      linkSync(proto, dest);
      continue;
    }
    parentDirs(e.path);
    made.add(e.path);
    const mode = (e.mode ?? 0o644) & 0o777;
    if (e.type === 'dir') {
      if (!lstatSync(dest, { throwIfNoEntry: false })) mkdirSync(dest);
      chmodSync(dest, mode);
    } else if (e.type === 'symlink') {
      symlinkSync(e.target!, dest);
    } else {
      const src = e.kind === 'mode' ? findBelow(below, e.path)?.abs : `${cs.dir}/files/${e.sha256}`;
      if (!src)
        throw new NanocellError(
          `${e.path} changed mode in task ${m.taskId} but is gone from the project`,
          'discard the session and run it again',
          'STATE',
        );
      copyFileSync(src, dest, constants.COPYFILE_FICLONE);
      chmodSync(dest, mode);
    }
  }
}

function coveredByAncestor(tree: string, rel: string): boolean {
  return selfAndAncestors(parentOf(rel) || '.')
    .filter((d) => d !== '.')
    .some((d) => {
      const st = lstatSync(`${tree}/${d}`, { throwIfNoEntry: false });
      return st !== undefined && !st.isDirectory();
    });
}
