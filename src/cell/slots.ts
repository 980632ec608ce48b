// Host uid ranges for cells in root mode. Each live cell leases its own range of 65536 uids,
// so no two cells, and no cell and host user, share a uid: files and processes of one cell are
// foreign to every other.
import fs from 'node:fs';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import { UID_RANGE_SIZE } from './plan.js';

/** First host uid used for cells: far above distro users and /etc/subuid ranges. */
export const SLOT_UID_BASE = 1 << 30;
export const MAX_SLOTS = 4096;

export interface SlotLease {
  slot: number;
  uidBase: number;
  file: string;
}

export function leaseSlot(slotsDir: string, cellId: string): SlotLease {
  // Start at a random slot so concurrent supervisors rarely collide on the first try.
  const start = Math.floor(Math.random() * MAX_SLOTS);
  for (let i = 0; i < MAX_SLOTS; i++) {
    const slot = (start + i) % MAX_SLOTS;
    const file = path.join(slotsDir, String(slot));
    try {
      fs.writeFileSync(file, cellId, { flag: 'wx', mode: 0o600 });
      return { slot, uidBase: SLOT_UID_BASE + slot * UID_RANGE_SIZE, file };
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

/** Slots whose cell dir no longer exists. */
export function releaseOrphanSlots(slotsDir: string, cellsDir: string): number {
  let n = 0;
  for (const name of fs.readdirSync(slotsDir)) {
    const file = path.join(slotsDir, name);
    let id = '';
    try {
      id = fs.readFileSync(file, 'utf8').trim();
    } catch {
      continue;
    }
    if (!id || !fs.existsSync(path.join(cellsDir, id))) {
      fs.rmSync(file, { force: true });
      n++;
    }
  }
  return n;
}
