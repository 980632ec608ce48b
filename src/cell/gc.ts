// Removes what dead supervisors left behind: runtime state, cgroups, mounts, cell dirs and uid
// slots. Runs at every cell start and as `nanocell gc`.
import fs from 'node:fs';
import path from 'node:path';
import { runCommand } from '../util/run.js';
import { removeTree } from '../util/fs.js';
import { NanocellError } from '../util/errors.js';
import { isOwnerAlive, ownerAlive, type OwnerRecord } from '../host/owner.js';
import { deleteContainer, listRuntimeContainers, type RuntimeInfo } from '../runtime/runtime.js';
import { releaseOrphanSlots } from '../host/slots.js';
import { cellDirMaker, RETIRED_CELL_PREFIX, retireCellDir, type StateLayout } from './state.js';

/**
 * A cell dir younger than this without an owner file may still be being created by an older
 * nanocell, which made the dir before its owner record (this one never shows such a dir: see
 * createCellDir).
 */
const CREATION_GRACE_MS = 60_000;

export interface GcResult {
  cells: string[];
  containers: string[];
  slots: number;
  errors: string[];
}

function readOwner(dir: string): OwnerRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'owner.json'), 'utf8')) as OwnerRecord;
  } catch {
    return undefined;
  }
}

/** Mount points at or below `dir`, deepest first, from this process's mount table. */
function mountsUnder(dir: string): string[] {
  const table = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of table.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const decoded = mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (decoded === dir || decoded.startsWith(`${dir}/`)) out.push(decoded);
  }
  return out.sort((a, b) => b.length - a.length);
}

/**
 * Removing a dir that still has a mount below it would delete through the mount (a toolchain
 * cache, the project's idmapped view): refuse instead, and leave it to gc.
 */
export function assertNothingMountedUnder(dir: string): void {
  const left = mountsUnder(dir);
  if (left.length) {
    throw new NanocellError(
      `${dir} still has mounts (${left.join(', ')}), so it was not removed`,
      'run `nanocell gc`, which unmounts them first',
      'STATE',
    );
  }
}

async function unmountAllUnder(dir: string): Promise<void> {
  for (const mp of mountsUnder(dir)) {
    const r = await runCommand('umount', [mp]);
    if (r.exitCode !== 0) await runCommand('umount', ['-l', mp]);
  }
  const left = mountsUnder(dir);
  if (left.length) throw new Error(`still mounted: ${left.join(', ')}`);
}

function killPidFile(file: string): void {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 1) process.kill(pid, 'SIGKILL');
  } catch {
    // gone already, or never started
  }
}

export async function gcStaleCells(layout: StateLayout, rt: RuntimeInfo): Promise<GcResult> {
  const result: GcResult = { cells: [], containers: [], slots: 0, errors: [] };
  let ids: string[] = [];
  try {
    ids = fs.readdirSync(layout.cells);
  } catch {
    return result;
  }
  for (const id of ids) {
    const dir = path.join(layout.cells, id);
    if (id.startsWith(RETIRED_CELL_PREFIX)) {
      // Its supervisor had released everything else and died while removing it.
      try {
        await unmountAllUnder(dir);
        removeTree(dir);
        result.cells.push(id.slice(RETIRED_CELL_PREFIX.length));
      } catch (e) {
        result.errors.push(`${id}: ${(e as Error).message}`);
      }
      continue;
    }
    const maker = cellDirMaker(id);
    if (maker) {
      // Being made by createCellDir: its maker's pid and start time (if it could read its
      // own) are in its name; while the maker lives it is not ours to touch.
      const start = maker.startTime === '' ? null : Number(maker.startTime);
      if (isOwnerAlive(maker.pid, start)) continue;
      try {
        removeTree(dir);
      } catch (e) {
        result.errors.push(`${id}: ${(e as Error).message}`);
      }
      continue;
    }
    const owner = readOwner(dir);
    if (owner && ownerAlive(owner)) continue;
    if (!owner) {
      const st = fs.statSync(dir, { throwIfNoEntry: false });
      if (st && Date.now() - st.mtimeMs < CREATION_GRACE_MS) continue;
    }
    try {
      // The runtime's delete kills what is left and removes cgroups; then the mounts go.
      await deleteContainer(rt, layout.runtimeRoot, id).catch(() =>
        killPidFile(path.join(dir, 'init.pid')),
      );
      await unmountAllUnder(dir);
      removeTree(retireCellDir(dir));
      result.cells.push(id);
    } catch (e) {
      result.errors.push(`${id}: ${(e as Error).message}`);
    }
  }
  // Runtime state without a cell dir: a crash between runtime start and bookkeeping.
  const live = new Set(fs.readdirSync(layout.cells));
  for (const id of listRuntimeContainers(layout.runtimeRoot)) {
    if (live.has(id)) continue;
    try {
      await deleteContainer(rt, layout.runtimeRoot, id);
      result.containers.push(id);
    } catch (e) {
      result.errors.push(`${id}: ${(e as Error).message}`);
    }
  }
  result.slots = process.geteuid!() === 0 ? releaseOrphanSlots(layout.slots) : 0;
  return result;
}
