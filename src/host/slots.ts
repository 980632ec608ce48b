// Host uid ranges for cells in root mode. Each live cell leases its own range of 65536 uids,
// so no two cells, and no cell and host user, share a uid: files and processes of one cell are
// foreign to every other. Leases are host-wide (not per state root), because uids are.
import fs from 'node:fs';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';

/** Host uids per cell in root mode: the whole 16-bit range, as container runtimes do. */
export const UID_RANGE_SIZE = 65536;
/** First host uid used for cells: far above distro users and /etc/subuid ranges. */
const SLOT_UID_BASE = 1 << 30;
const MAX_SLOTS = 4096;
/** Host-wide lease dir; on tmpfs, since no cell survives a reboot. */
export const HOST_SLOTS_DIR = '/run/nanocell/slots';

export interface SlotLease {
  slot: number;
  uidBase: number;
  file: string;
}

/** Leases a free range; the lease file names the cell dir, so a lease outlives no cell. */
export function leaseSlot(slotsDir: string, cellDir: string): SlotLease {
  fs.mkdirSync(slotsDir, { recursive: true, mode: 0o700 });
  // Start at a random slot so concurrent supervisors rarely collide on the first try.
  const start = Math.floor(Math.random() * MAX_SLOTS);
  for (let i = 0; i < MAX_SLOTS; i++) {
    const slot = (start + i) % MAX_SLOTS;
    const file = path.join(slotsDir, String(slot));
    try {
      // Written whole, then linked into place: link() fails if the slot is taken, and a
      // reader (another supervisor's gc) never sees an empty lease and frees it.
      const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
      fs.writeFileSync(tmp, cellDir, { flag: 'wx', mode: 0o600 });
      try {
        fs.linkSync(tmp, file);
        return { slot, uidBase: SLOT_UID_BASE + slot * UID_RANGE_SIZE, file };
      } finally {
        fs.rmSync(tmp, { force: true });
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  throw new NanocellError(
    `all ${MAX_SLOTS} cell uid ranges are in use`,
    'destroy cells or run `nanocell gc`',
    'STATE',
  );
}

export function releaseSlot(lease: SlotLease): void {
  fs.rmSync(lease.file, { force: true });
}

/** Releases leases whose cell dir no longer exists, whatever state root it was under. */
export function releaseOrphanSlots(slotsDir: string): number {
  let n = 0;
  let names: string[] = [];
  try {
    names = fs.readdirSync(slotsDir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (staleLeaseTemp(slotsDir, name)) {
      fs.rmSync(path.join(slotsDir, name), { force: true });
      continue;
    }
    if (!/^\d+$/.test(name)) continue;
    const file = path.join(slotsDir, name);
    let cellDir = '';
    try {
      cellDir = fs.readFileSync(file, 'utf8').trim();
    } catch {
      continue;
    }
    if (!path.isAbsolute(cellDir) || !fs.existsSync(cellDir)) {
      fs.rmSync(file, { force: true });
      n++;
    }
  }
  return n;
}

/**
 * A lease's temp file (`SLOT.PID.RANDOM`, leaseSlot) left by a supervisor killed between
 * writing and removing it: its writer is gone, or it is older than any lease takes to write.
 */
function staleLeaseTemp(slotsDir: string, name: string): boolean {
  const m = /^\d+\.(\d+)\.[a-z0-9]+$/.exec(name);
  if (!m) return false;
  try {
    process.kill(Number(m[1]), 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return true;
  }
  try {
    return Date.now() - fs.statSync(path.join(slotsDir, name)).mtimeMs > 60_000;
  } catch {
    return false;
  }
}
