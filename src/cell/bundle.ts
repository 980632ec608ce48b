// Writes a planned bundle to disk: the empty rootfs with its mount points, and config.json.
import fs from 'node:fs';
import path from 'node:path';
import type { CellPlan } from '../plan/plan.js';
import type { CellDirs } from './state.js';

/** Mount point modes matter: runc gives a tmpfs the mode of the directory it covers. */
const MOUNTPOINT_MODES: Record<string, number> = { '/tmp': 0o1777, '/home/cell': 0o700 };

export function materializeBundle(plan: CellPlan, dirs: CellDirs): void {
  fs.mkdirSync(dirs.rootfs, { recursive: true, mode: 0o755 });
  const inRoot = (p: string) => path.join(dirs.rootfs, p);
  for (const d of plan.mountpoints.dirs) {
    fs.mkdirSync(inRoot(d), { recursive: true, mode: 0o755 });
    const mode = MOUNTPOINT_MODES[d];
    if (mode !== undefined) fs.chmodSync(inRoot(d), mode);
  }
  for (const f of plan.mountpoints.files) {
    fs.mkdirSync(path.dirname(inRoot(f)), { recursive: true, mode: 0o755 });
    fs.writeFileSync(inRoot(f), '', { mode: 0o444 });
  }
  for (const [link, target] of plan.mountpoints.symlinks) fs.symlinkSync(target, inRoot(link));
  fs.writeFileSync(dirs.config, JSON.stringify(plan.spec, null, 2), { mode: 0o600 });
}
