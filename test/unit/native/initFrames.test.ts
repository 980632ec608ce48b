import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  encodeExecPayload,
  encodeFrame,
  FrameDecoder,
  MAX_FRAME_PAYLOAD,
  parseReadyPayload,
} from '../../../src/cell/initFrames.js';
import { decodeWaitStatus, spawnFailure } from '../../../src/cell/initClient.js';

describe('init frames', () => {
  it('encodes the header as type, id and length little-endian', () => {
    const f = encodeFrame('I', 0x01020304, Buffer.from('hi'));
    expect([...f]).toEqual([0x49, 4, 3, 2, 1, 2, 0, 0, 0, 0x68, 0x69]);
  });

  it('decodes a frame split at every byte', () => {
    const frame = encodeFrame('O', 7, Buffer.from('hello'));
    const d = new FrameDecoder();
    const got = [];
    for (const byte of frame) got.push(...d.push(Buffer.from([byte])));
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ type: 'O', id: 7 });
    expect(got[0]?.payload.toString()).toBe('hello');
    expect(d.pendingBytes).toBe(0);
  });

  it('decodes coalesced frames, including empty EOF frames', () => {
    const d = new FrameDecoder();
    const bytes = Buffer.concat([
      encodeFrame('O', 1, Buffer.from('a')),
      encodeFrame('O', 1),
      encodeFrame('X', 1, Buffer.from([0, 0, 0, 0])),
    ]);
    const got = d.push(bytes);
    expect(got.map((f) => [f.type, f.id, f.payload.length])).toEqual([
      ['O', 1, 1],
      ['O', 1, 0],
      ['X', 1, 4],
    ]);
  });

  it('reassembles a big payload from arbitrary chunks', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 300_000 }), { maxLength: 20 }), (cuts) => {
        const payload = Buffer.alloc(1_000_000);
        for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
        const stream = Buffer.concat([
          encodeFrame('e', 3, payload),
          encodeFrame('S', 4, Buffer.alloc(4)),
        ]);
        const d = new FrameDecoder();
        const got = [];
        let pos = 0;
        for (const c of cuts) {
          got.push(...d.push(stream.subarray(pos, Math.min(stream.length, pos + c))));
          pos = Math.min(stream.length, pos + c);
        }
        got.push(...d.push(stream.subarray(pos)));
        expect(got).toHaveLength(2);
        expect(got[0]?.payload.equals(payload)).toBe(true);
        expect(got[1]).toMatchObject({ type: 'S', id: 4 });
      }),
      { numRuns: 30 },
    );
  });

  it('rejects a frame larger than the protocol bound', () => {
    const head = Buffer.alloc(9);
    head.write('O', 0);
    head.writeUInt32LE(MAX_FRAME_PAYLOAD + 1, 5);
    expect(() => new FrameDecoder().push(head)).toThrow(/frame of/);
  });

  it('encodes an exec request as counts then NUL-terminated strings', () => {
    const p = encodeExecPayload(['ls', '-l'], ['PATH=/usr/bin'], '/w');
    expect(p.readUInt32LE(0)).toBe(2);
    expect(p.readUInt32LE(4)).toBe(1);
    expect(p.subarray(8).toString()).toBe('/w\0ls\0-l\0PATH=/usr/bin\0');
    expect(() => encodeExecPayload(['a\0b'], [], '/')).toThrow(/NUL/);
  });

  it('parses ready key/value lines', () => {
    expect(parseReadyPayload(Buffer.from('landlock_abi=7\nlandlock=on\n'))).toEqual({
      landlock_abi: '7',
      landlock: 'on',
    });
  });

  it('decodes wait statuses and spawn failures', () => {
    expect(decodeWaitStatus(3 << 8)).toEqual({ kind: 'exited', code: 3 });
    expect(decodeWaitStatus(9)).toEqual({ kind: 'signaled', signal: 9 });
    expect(decodeWaitStatus(15 | 0x80)).toEqual({ kind: 'signaled', signal: 15 });
    expect(spawnFailure(2)).toEqual({ kind: 'spawn-failed', errno: 2, code: 127 });
    expect(spawnFailure(13)).toEqual({ kind: 'spawn-failed', errno: 13, code: 126 });
  });
});
