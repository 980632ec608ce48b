// The per-project caches of toolchain presets (src/plan/toolchains.ts): one dir per project and
// tool under the state root, kept between tasks so a second `npm ci` or `cargo build` does not
// download again, and never the user's real ~/.npm or ~/.cargo. An agent preset's state dir
// (src/plan/agent.ts) is mounted the same way, from its own place under the state root. Root mode shows each through an
// idmapped, writable, noexec mount under the cell dir, so files the state root keeps as root
// appear owned by this cell's user (its host uid range differs from cell to cell); rootless
// binds them directly, since the invoking user is the task.
import fs from 'node:fs';
import path from 'node:path';
import { runCommand } from '../util/run.js';
import { nativeBinary } from '../host/native.js';
import type { OciMount } from '../plan/oci.js';
import type { ToolCache } from '../plan/toolchains.js';
import { NanocellError } from '../util/errors.js';
import { unmountOverlay } from '../workspace/overlay.js';
import type { CellDirs, StateLayout } from './state.js';

export interface AcquiredCaches {
  mounts: OciMount[];
  release(): Promise<void>;
}

export async function acquireToolCaches(opts: {
  caches: readonly ToolCache[];
  layout: StateLayout;
  dirs: CellDirs;
  projectKey: string;
  /** Root mode: the cell user's host uid and gid; undefined when rootless. */
  cellHost?: { uid: number; gid: number };
}): Promise<AcquiredCaches> {
  const mounted: string[] = [];
  const release = async () => {
    // Errors propagate: the cell dir is then kept (gc.ts), never deleted through a live mount.
    for (const m of mounted.reverse()) await unmountOverlay(m);
  };
  const mounts: OciMount[] = [];
  try {
    for (const c of opts.caches) {
      const host = c.agent
        ? opts.layout.agentConfig(opts.projectKey, c.name)
        : opts.layout.toolCache(opts.projectKey, c.name);
      fs.mkdirSync(host, { recursive: true, mode: 0o700 });
      let source = host;
      if (opts.cellHost) {
        fs.mkdirSync(opts.dirs.caches, { recursive: true, mode: 0o711 });
        source = path.join(opts.dirs.caches, c.name);
        fs.mkdirSync(source, { mode: 0o700 });
        const me = `${process.geteuid!()}`;
        const r = await runCommand(nativeBinary('nanocell-idmap'), [
          '--rw',
          '--uid',
          `${me}:${opts.cellHost.uid}`,
          '--gid',
          `${process.getegid!()}:${opts.cellHost.gid}`,
          host,
          source,
        ]);
        if (r.exitCode !== 0) {
          throw new NanocellError(
            `cannot mount the ${c.name} cache ${host}: ${String(r.stderr).trim()}`,
            'the state root must be on a file system that supports idmapped mounts (ext4, xfs, btrfs, tmpfs), or drop toolchains: from the policy',
            'HOST',
          );
        }
        mounted.push(source);
      }
      mounts.push({
        destination: c.cell,
        type: 'bind',
        source,
        options: ['rbind', 'rw', 'nosuid', 'nodev', 'noexec'],
      });
    }
  } catch (e) {
    await release();
    throw e;
  }
  return { mounts, release };
}
