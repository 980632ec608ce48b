// Uid-range leases (src/host/slots.ts): what gc releases and what it must leave alone.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { leaseSlot, releaseOrphanSlots, releaseSlot } from '../../../src/host/slots.js';

let dir = '';
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('uid slots', () => {
  it('releases leases of missing cells and temp files of dead writers, nothing else', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-slots-'));
    const slots = path.join(dir, 'slots');
    const cell = path.join(dir, 'cell');
    fs.mkdirSync(cell);
    const live = leaseSlot(slots, cell);
    fs.writeFileSync(path.join(slots, '900001'), path.join(dir, 'gone'));
    // A supervisor killed inside leaseSlot leaves its temp file: SLOT.PID.RANDOM.
    const dead = spawnSync('true').pid;
    fs.writeFileSync(path.join(slots, `900002.${dead}.k3x`), cell);
    fs.writeFileSync(path.join(slots, `900003.${process.pid}.k3x`), cell);
    expect(releaseOrphanSlots(slots)).toBe(1);
    expect(fs.readdirSync(slots).sort()).toEqual(
      [String(live.slot), `900003.${process.pid}.k3x`].sort(),
    );
    releaseSlot(live);
    fs.rmSync(cell, { recursive: true });
    expect(releaseOrphanSlots(slots)).toBe(0);
  });
});
