// native/protocol.h owns the init control protocol's constants for the C side; the TypeScript
// side has its own copies in src/cell/initFrames.ts. This holds the two equal, so a change on
// one side that is not made on the other fails here.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  encodeExecPayload,
  encodeFrame,
  encodeWinsize,
  FRAME_HEADER_BYTES,
  MAX_FRAME_PAYLOAD,
  type FrameType,
} from '../../../src/cell/initFrames.js';

const HEADER = fileURLToPath(new URL('../../../native/protocol.h', import.meta.url));

/** The header's `#define NC_NAME value` lines; a value of a form not understood here throws. */
function parseDefines(text: string): Map<string, number | string> {
  const defines = new Map<string, number | string>();
  for (const m of text.matchAll(/^#define\s+(NC_\w+)\s+(.+?)\s*(?:\/\*.*)?$/gm)) {
    const [, name = '', raw = ''] = m;
    defines.set(name, parseValue(name, raw));
  }
  return defines;
}

function parseValue(name: string, raw: string): number | string {
  const char = /^'(.)'$/.exec(raw);
  if (char) return char[1] as string;
  const int = /^(\d+)u?$/.exec(raw);
  if (int) return Number(int[1]);
  const shift = /^\((\d+)u?\s*<<\s*(\d+)\)$/.exec(raw);
  if (shift) return Number(shift[1]) * 2 ** Number(shift[2]);
  throw new Error(`native/protocol.h: cannot read the value of ${name}: ${raw}`);
}

const c = parseDefines(readFileSync(HEADER, 'utf8'));

function cNumber(name: string): number {
  const v = c.get(name);
  if (typeof v !== 'number') throw new Error(`native/protocol.h has no numeric ${name}`);
  return v;
}

// Every FrameType exactly once; the compiler refuses this list if the union gains or loses one.
const TS_FRAME_TYPES = [
  'E',
  'T',
  'W',
  'I',
  'K',
  'Q',
  'A',
  'R',
  'S',
  'O',
  'e',
  'X',
  'F',
  'L',
  'Z',
  'a',
] as const;
type Listed = (typeof TS_FRAME_TYPES)[number];
const everyTypeListed: [Exclude<FrameType, Listed>] extends [never] ? true : never = true;
const onlyTypesListed: [Exclude<Listed, FrameType>] extends [never] ? true : never = true;

describe('init protocol constants: native/protocol.h = src/cell/initFrames.ts', () => {
  it('has the same frame header size and maximum payload', () => {
    expect(cNumber('NC_FRAME_HEADER_BYTES')).toBe(FRAME_HEADER_BYTES);
    expect(encodeFrame('Q', 0).length).toBe(cNumber('NC_FRAME_HEADER_BYTES'));
    expect(cNumber('NC_MAX_FRAME_PAYLOAD')).toBe(MAX_FRAME_PAYLOAD);
  });

  it('has the same exec request header', () => {
    const strings = Buffer.byteLength('/w\0ls\0');
    expect(encodeExecPayload(['ls'], [], '/w').length - strings).toBe(
      cNumber('NC_EXEC_HEADER_BYTES'),
    );
  });

  it('has the same terminal size header (T request, W frame)', () => {
    expect(encodeWinsize({ cols: 80, rows: 24 }).length).toBe(cNumber('NC_TTY_HEADER_BYTES'));
    expect(() => encodeWinsize({ cols: 70000, rows: 24 })).toThrow(/0-65535/);
  });

  it('has the same frame types', () => {
    expect(everyTypeListed && onlyTypesListed).toBe(true);
    const cTypes = [...c].filter(([name]) => name.startsWith('NC_FRAME_') && !/BYTES/.test(name));
    expect(cTypes.map(([, v]) => v).sort()).toEqual([...TS_FRAME_TYPES].sort());
    expect(new Set(cTypes.map(([, v]) => v)).size).toBe(cTypes.length);
  });

  it('keeps the control channel on fd 3, where the supervisor hands it to the monitor', () => {
    // The TypeScript side has no constant for it: spawn's stdio[3] (src/cell/cell.ts) and the
    // `3<&0` of the stdin-channel wrapper (src/cell/plan.ts).
    expect(cNumber('NC_CTL_FD')).toBe(3);
  });
});
