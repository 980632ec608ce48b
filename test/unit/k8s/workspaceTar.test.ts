// The workspace tar a pod sends back is hostile input: each trick must be refused (or dropped)
// without anything landing outside the staging directory.
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';
import { unpackWorkspace } from '../../../src/k8s/workspaceTar.js';
import { TEST_ROOT } from '../../helpers/cells.js';

let base = '';
const limits = { maxFiles: 100, maxBytes: 1000 };

function tarOf(entries: (Partial<tar.Header> & { name: string; body?: string })[]): Readable {
  const pack = tar.pack();
  for (const { body, ...h } of entries) pack.entry(h as tar.Header, body ?? '');
  pack.finalize();
  return Readable.from(pack as AsyncIterable<Buffer>);
}

async function unpack(entries: Parameters<typeof tarOf>[0]) {
  fs.mkdirSync(TEST_ROOT, { recursive: true });
  base = fs.mkdtempSync(path.join(TEST_ROOT, 'untar-'));
  return unpackWorkspace(tarOf(entries), path.join(base, 'stage'), limits);
}

afterEach(() => {
  if (base) fs.rmSync(base, { recursive: true, force: true });
});

describe('unpackWorkspace (hostile tar from the pod)', () => {
  it('unpacks files, dirs and symlinks, dropping setuid bits', async () => {
    const r = await unpack([
      { name: './', type: 'directory', mode: 0o755 },
      { name: 'src', type: 'directory', mode: 0o755 },
      { name: 'src/a.txt', type: 'file', mode: 0o4755, body: 'hi' },
      { name: 'link', type: 'symlink', linkname: '/etc/passwd' },
    ]);
    expect(r.entries).toBe(3);
    const st = fs.statSync(path.join(base, 'stage/src/a.txt'));
    expect(st.mode & 0o7777).toBe(0o755);
    expect(fs.readlinkSync(path.join(base, 'stage/link'))).toBe('/etc/passwd');
  });

  it('refuses escapes: .., absolute paths, writing through a symlink, a name twice', async () => {
    await expect(unpack([{ name: '../evil', type: 'file', body: 'x' }])).rejects.toThrow(
      /".." component/,
    );
    await expect(unpack([{ name: '/etc/evil', type: 'file', body: 'x' }])).rejects.toThrow(
      /absolute/,
    );
    await expect(
      unpack([
        { name: 'out', type: 'symlink', linkname: base },
        { name: 'out/evil', type: 'file', body: 'x' },
      ]),
    ).rejects.toThrow(/not a directory/);
    expect(fs.existsSync(path.join(base, 'evil'))).toBe(false);
    await expect(
      unpack([
        { name: 'f', type: 'symlink', linkname: '/tmp/x' },
        { name: 'f', type: 'file', body: 'x' },
      ]),
    ).rejects.toThrow(/could not be unpacked/);
  });

  it('caps bytes and entries, and drops hard links and devices', async () => {
    await expect(unpack([{ name: 'big', type: 'file', body: 'x'.repeat(2000) }])).rejects.toThrow(
      /larger than 1000/,
    );
    await expect(
      unpack(
        Array.from({ length: 101 }, (_, i) => ({ name: `f${i}`, type: 'file' as const, body: '' })),
      ),
    ).rejects.toThrow(/more than 100 entries/);
    const r = await unpack([
      { name: 'a', type: 'file', body: 'x' },
      { name: 'h', type: 'link', linkname: 'a' },
      { name: 'dev', type: 'character-device', devmajor: 1, devminor: 3 },
    ]);
    expect(r.skipped).toEqual(['h', 'dev']);
    expect(fs.existsSync(path.join(base, 'stage/h'))).toBe(false);
  });
});
