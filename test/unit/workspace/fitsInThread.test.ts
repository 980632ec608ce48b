// Which change sets are small enough to collect without a worker thread.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fitsInThread } from '../../../src/workspace/collectWorker.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-fits-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const max = { entries: 4, bytes: 100 };

describe('fitsInThread', () => {
  it('accepts an empty upper layer and one within both bounds', () => {
    expect(fitsInThread(dir, max)).toBe(true);
    fs.mkdirSync(path.join(dir, 'd'));
    fs.writeFileSync(path.join(dir, 'd', 'a'), 'x'.repeat(60));
    fs.writeFileSync(path.join(dir, 'b'), 'x'.repeat(40));
    expect(fitsInThread(dir, max)).toBe(true);
  });

  it('counts entries in nested directories', () => {
    fs.mkdirSync(path.join(dir, 'd/e/f'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'd/e/f/a'), '');
    expect(fitsInThread(dir, max)).toBe(true);
    fs.writeFileSync(path.join(dir, 'd/e/f/b'), '');
    expect(fitsInThread(dir, max)).toBe(false);
  });

  it('refuses an upper layer past the byte bound', () => {
    fs.writeFileSync(path.join(dir, 'big'), 'x'.repeat(101));
    expect(fitsInThread(dir, max)).toBe(false);
  });

  it('does not follow symlinks out of the upper layer', () => {
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-fits-out-'));
    try {
      fs.writeFileSync(path.join(outside, 'huge'), 'x'.repeat(1000));
      fs.symlinkSync(outside, path.join(dir, 'link'));
      fs.symlinkSync(path.join(outside, 'huge'), path.join(dir, 'file-link'));
      expect(fitsInThread(dir, max)).toBe(true);
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
  });
});
