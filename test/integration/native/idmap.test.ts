import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import {
  chownSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildNative, IDMAP_BIN } from './nativeBuild.js';

let dir = '';
const mounted: string[] = [];

beforeAll(() => buildNative());

afterEach(() => {
  for (const m of mounted.splice(0)) spawnSync('umount', ['-l', m]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function setup(): { src: string; dst: string } {
  dir = mkdtempSync(path.join(os.tmpdir(), 'nc-idmap-'));
  const src = path.join(dir, 'src');
  const dst = path.join(dir, 'dst');
  mkdirSync(src);
  mkdirSync(dst);
  writeFileSync(path.join(src, 'file'), 'data');
  chownSync(src, 4321, 4321);
  chownSync(path.join(src, 'file'), 4321, 4321);
  return { src, dst };
}

describe('nanocell-idmap', () => {
  it('bind-mounts SRC read-only with FROM shown as TO', () => {
    const { src, dst } = setup();
    const r = spawnSync(IDMAP_BIN, ['--uid', '4321:1000', '--gid', '4321:1000', src, dst], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    mounted.push(dst);
    const st = statSync(path.join(dst, 'file'));
    expect([st.uid, st.gid]).toEqual([1000, 1000]);
    expect(statSync(path.join(src, 'file')).uid).toBe(4321);
    const write = spawnSync('sh', ['-c', `echo x > ${dst}/new`], { encoding: 'utf8' });
    expect(write.stderr).toMatch(/Read-only file system/);
    const opts = spawnSync('findmnt', ['-no', 'OPTIONS', dst], { encoding: 'utf8' }).stdout;
    expect(opts).toMatch(/\bro\b/);
    expect(opts).toMatch(/nosuid/);
    expect(opts).toMatch(/nodev/);
    expect(opts).toMatch(/idmapped/);
  });

  it('refuses a symlink as SRC and reports the step', () => {
    const { src, dst } = setup();
    const link = path.join(dir, 'link');
    symlinkSync(src, link);
    const r = spawnSync(IDMAP_BIN, ['--uid', '4321:1000', '--gid', '4321:1000', link, dst], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^nanocell-idmap: open source: .+\n$/);
  });
});
