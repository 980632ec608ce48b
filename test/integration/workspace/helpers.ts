// Real directories, real mounts: a project, a sibling sentinel, and snapshots to compare them.
import { createHash } from 'node:crypto';
import { symlinkSync } from 'node:fs';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { execa } from 'execa';
import { isMountPoint, unmountOverlay } from '../../../src/workspace/overlay.js';

export type Snapshot = Record<string, string>;

/** Every path below `root` with its type, mode and content hash or link target. */
export function snapshot(root: string, skip: (rel: string) => boolean = () => false): Snapshot {
  const out: Snapshot = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(rel ? `${root}/${rel}` : root).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      if (skip(p)) continue;
      const st = lstatSync(`${root}/${p}`);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out[p] = `dir ${mode}`;
        walk(p);
      } else if (st.isSymbolicLink()) out[p] = `link ${readlinkSync(`${root}/${p}`)}`;
      else if (st.isFile()) {
        out[p] = `file ${mode} ${createHash('sha256')
          .update(readFileSync(`${root}/${p}`))
          .digest('hex')}`;
      } else out[p] = `other ${st.mode.toString(8)}`;
    }
  };
  walk('');
  return out;
}

/** Writes a tree: strings are files, null is a dir, {link} a symlink. */
export function writeTree(
  root: string,
  tree: Record<string, string | null | { link: string }>,
): void {
  for (const [rel, v] of Object.entries(tree)) {
    const abs = `${root}/${rel}`;
    mkdirSync(abs.slice(0, abs.lastIndexOf('/')), { recursive: true });
    if (v === null) mkdirSync(abs, { recursive: true });
    else if (typeof v === 'string') writeFileSync(abs, v);
    else symlinkSync(v.link, abs);
  }
}

export interface Sandbox {
  base: string;
  project: string;
  sentinel: string;
  cleanup(): Promise<void>;
}

/** A temp dir holding `project/` and a sibling `sentinel/` that nothing may ever touch. */
export function makeSandbox(): Sandbox {
  const base = mkdtempSync('/tmp/nanocell-ws-');
  const project = `${base}/project`;
  const sentinel = `${base}/sentinel`;
  mkdirSync(project);
  mkdirSync(sentinel);
  writeFileSync(`${sentinel}/keep`, 'sentinel\n');
  return {
    base,
    project,
    sentinel,
    async cleanup() {
      // Unmount anything left below base (deepest first), then remove it.
      const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[4])
        .filter((m): m is string => !!m && m.startsWith(`${base}/`))
        .sort((a, b) => b.length - a.length);
      for (const m of mounts) if (isMountPoint(m)) await unmountOverlay(m);
      rmSync(base, { recursive: true, force: true });
    },
  };
}

export async function mknod(path: string, type: 'c' | 'p', major = 0, minor = 0): Promise<void> {
  if (type === 'p') await execa('mknod', [path, 'p']);
  else await execa('mknod', [path, 'c', String(major), String(minor)]);
}

export async function bindReadOnly(dir: string): Promise<void> {
  await execa('mount', ['--bind', dir, dir]);
  await execa('mount', ['-o', 'remount,bind,ro', dir]);
}
