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
import { isMountPoint } from '../../../src/workspace/overlay.js';
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

  it('mounts the overlay over the idmapped view in the same process (--overlay)', () => {
    const { src, dst } = setup();
    const upper = path.join(dir, 'upper');
    const work = path.join(dir, 'work');
    const merged = path.join(dir, 'merged');
    for (const d of [upper, work, merged]) mkdirSync(d);
    const data = `lowerdir=${dst},upperdir=${upper},workdir=${work},redirect_dir=off,metacopy=off,index=off`;
    const r = spawnSync(
      IDMAP_BIN,
      ['--uid', '4321:1000', '--gid', '4321:1000', src, dst, '--overlay', data, merged],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    mounted.push(merged, dst);
    expect(statSync(path.join(merged, 'file')).uid).toBe(1000);
    writeFileSync(path.join(merged, 'new'), 'x');
    expect(statSync(path.join(upper, 'new')).size).toBe(1);
    const opts = spawnSync('findmnt', ['-no', 'FSTYPE,OPTIONS', merged], { encoding: 'utf8' });
    expect(opts.stdout).toMatch(/^overlay .*nosuid/);
    expect(opts.stdout).toMatch(/nodev/);
  });

  it('reports a failed overlay mount as its own step, keeping the idmapped view', () => {
    const { src, dst } = setup();
    const merged = path.join(dir, 'merged');
    mkdirSync(merged);
    const r = spawnSync(
      IDMAP_BIN,
      ['--uid', '4321:1000', '--gid', '4321:1000', src, dst, '--overlay', 'bogus=1', merged],
      { encoding: 'utf8' },
    );
    mounted.push(dst);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^nanocell-idmap: overlay mount: .+\n$/);
    expect(statSync(path.join(dst, 'file')).uid).toBe(1000);
  });

  it('unmounts every mount stacked at each target and skips what is not mounted (--umount)', () => {
    const { src, dst } = setup();
    const plain = path.join(dir, 'plain');
    mkdirSync(plain);
    for (let i = 0; i < 2; i++) {
      const r = spawnSync(IDMAP_BIN, ['--uid', '4321:1000', '--gid', '4321:1000', src, dst]);
      expect(r.status).toBe(0);
    }
    mounted.push(dst);
    const r = spawnSync(IDMAP_BIN, ['--umount', dst, plain, path.join(dir, 'gone')], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(isMountPoint(dst)).toBe(false);
    expect(statSync(path.join(dst)).uid).not.toBe(1000);
  });
});
