// nanocell-attach --wait (native/attach.c): the warm cell's helper takes its pidfd at start and
// reads the claim's arguments from stdin. The request is input like any other: malformed ones
// are refused with one line and nothing mounted; an empty one (a cell destroyed unclaimed)
// exits 0. The attach itself, into a real warm cell, is test/integration/cell/pool.test.ts.
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { ATTACH_BIN, buildNative } from './nativeBuild.js';

beforeAll(() => buildNative());

function waitWith(input: Buffer | string, args: string[] = []) {
  const r = spawnSync(ATTACH_BIN, ['--pid', String(process.pid), '--wait', ...args], {
    input,
    encoding: 'utf8',
  });
  return { status: r.status, stderr: r.stderr.trim() };
}

describe('nanocell-attach --wait', () => {
  it('exits 0 doing nothing on an empty request', () => {
    expect(waitWith('')).toEqual({ status: 0, stderr: '' });
  });

  it('refuses a request that does not end with a NUL', () => {
    expect(waitWith('--src\0/a\0--dst\0/b')).toEqual({
      status: 1,
      stderr: 'nanocell-attach: the request does not end with a NUL: Invalid argument',
    });
  });

  it('refuses a request that names another pid or asks to wait again', () => {
    for (const req of ['--pid\x001\0', '--wait\0']) {
      const r = waitWith(req);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^usage: nanocell-attach /);
    }
  });

  it('refuses claim arguments on the command line of a waiting helper', () => {
    const r = waitWith('', ['--src', '/a']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^usage: nanocell-attach /);
  });

  it('refuses a request too long or with too many arguments, and an unclean protected path', () => {
    expect(waitWith(Buffer.alloc(300 * 1024, 'a'))).toMatchObject({
      status: 1,
      stderr: expect.stringMatching(/the request is too long/),
    });
    expect(waitWith('--noexec\0'.repeat(600))).toMatchObject({
      status: 1,
      stderr: expect.stringMatching(/too many arguments/),
    });
    expect(waitWith('--src\0/a\0--dst\0/b\0--ro\0../etc\0')).toMatchObject({
      status: 1,
      stderr: 'nanocell-attach: bad --ro path ../etc: Invalid argument',
    });
  });

  it('fails at start, before reading, when the cell is gone', () => {
    const r = spawnSync(ATTACH_BIN, ['--pid', '999999999', '--wait'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^nanocell-attach: pidfd_open of the cell's init: /);
  });

  it('refuses relative paths from the request', () => {
    expect(waitWith('--src\0a\0--dst\0/b\0').status).toBe(2);
  });
});
