// The session layers a stacked task starts from, under the cell's overlay: root mode shows each
// through its own idmapped read-only mount (the layers belong to the state root's owner, the
// cell user is a per-cell host uid), rootless uses them as they are.
import fs from 'node:fs';
import path from 'node:path';
import { runCommand } from '../util/run.js';
import { nativeBinary } from '../host/native.js';
import { NanocellError } from '../util/errors.js';
import { assertMountablePath, unmountOverlay } from '../workspace/index.js';

/** The layers of the tasks a cell starts from, topmost first, and those tasks, lowest first. */
export interface WorkspaceStack {
  layers: string[];
  taskIds: string[];
  /** The checkpoint the layers come from: kept by gc while the cell is on disk. */
  checkpoint?: string;
}

/** Idmapped views of `layers` under `dir`, topmost first; undone by unmountStack. */
export async function mountStack(
  layers: readonly string[],
  dir: string,
  cellHostUid: number,
): Promise<string[]> {
  const out: string[] = [];
  const me = { uid: process.geteuid!(), gid: process.getegid!() };
  try {
    for (const [i, layer] of layers.entries()) {
      const target = path.join(dir, `stack${i}`);
      assertMountablePath(target);
      fs.mkdirSync(target, { mode: 0o700 });
      out.push(target);
      const r = await runCommand(nativeBinary('nanocell-idmap'), [
        '--uid',
        `${me.uid}:${cellHostUid}`,
        '--gid',
        `${me.gid}:${cellHostUid}`,
        layer,
        target,
      ]);
      if (r.exitCode !== 0) {
        throw new NanocellError(
          `cannot create the idmapped view of session layer ${layer}: ${String(r.stderr).trim()}`,
          'the state root must be on a file system that supports idmapped mounts (ext4, xfs, btrfs, tmpfs)',
          'HOST',
        );
      }
    }
  } catch (e) {
    await unmountStack(out.filter((m) => fs.existsSync(m))).catch(() => undefined);
    throw e;
  }
  return out;
}

export async function unmountStack(mounts: readonly string[]): Promise<void> {
  for (const m of mounts) {
    await unmountOverlay(m);
    // Never recursive: a mount point left mounted would be the layer itself.
    fs.rmdirSync(m);
  }
}
