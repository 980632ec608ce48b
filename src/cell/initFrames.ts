// Framing of the init control protocol (docs/architecture.md, "Init control protocol"):
// `type:u8 | id:u32le | len:u32le | payload[len]`. Pure: no I/O.

/** @public The protocol test holds it equal to the C header's constant. */
export const FRAME_HEADER_BYTES = 9;
/** Larger frames are a protocol error; init enforces the same bound on its input. */
export const MAX_FRAME_PAYLOAD = 8 * 1024 * 1024;

/** A `T` request and a `W` frame start with `cols:u32le rows:u32le`. */
const TTY_HEADER_BYTES = 8;

export type FrameType =
  'E' | 'T' | 'W' | 'I' | 'K' | 'Q' | 'A' | 'R' | 'S' | 'O' | 'e' | 'X' | 'F' | 'L' | 'Z' | 'a';

/** A terminal size; the kernel keeps each as a u16. */
export interface TtySize {
  cols: number;
  rows: number;
}

export interface Frame {
  type: string;
  id: number;
  payload: Buffer;
}

export function encodeFrame(
  type: FrameType,
  id: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt8(type.charCodeAt(0), 0);
  frame.writeUInt32LE(id >>> 0, 1);
  frame.writeUInt32LE(payload.length, 5);
  payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

/** Payload of an `E` frame: `argc:u32le envc:u32le` then `cwd\0`, `argv[i]\0`…, `env[j]\0`…. */
export function encodeExecPayload(argv: string[], env: string[], cwd: string): Buffer {
  const strings = [cwd, ...argv, ...env];
  for (const s of strings) {
    if (s.includes('\0')) throw new Error(`exec request string contains a NUL byte: ${s}`);
  }
  const head = Buffer.allocUnsafe(8);
  head.writeUInt32LE(argv.length, 0);
  head.writeUInt32LE(env.length, 4);
  return Buffer.concat([head, ...strings.map((s) => Buffer.from(`${s}\0`, 'utf8'))]);
}

/** `cols:u32le rows:u32le`: a `W` payload, and the head of a `T` payload (then an `E` one). */
export function encodeWinsize(size: TtySize): Buffer {
  for (const v of [size.cols, size.rows]) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
      throw new RangeError(`terminal size ${size.cols}x${size.rows} is not two integers 0-65535`);
    }
  }
  const b = Buffer.allocUnsafe(TTY_HEADER_BYTES);
  b.writeUInt32LE(size.cols, 0);
  b.writeUInt32LE(size.rows, 4);
  return b;
}

export function encodeU32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(value >>> 0, 0);
  return b;
}

/** `R` payload: `key=value` lines. */
export function parseReadyPayload(payload: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of payload.toString('utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** Splits a byte stream into frames, whatever the chunk boundaries. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    while (this.buffered >= FRAME_HEADER_BYTES) {
      const head = this.peek(FRAME_HEADER_BYTES);
      const len = head.readUInt32LE(5);
      if (len > MAX_FRAME_PAYLOAD) throw new Error(`init sent a frame of ${len} bytes`);
      if (this.buffered < FRAME_HEADER_BYTES + len) break;
      const whole = this.take(FRAME_HEADER_BYTES + len);
      frames.push({
        type: String.fromCharCode(whole.readUInt8(0)),
        id: whole.readUInt32LE(1),
        payload: whole.subarray(FRAME_HEADER_BYTES),
      });
    }
    return frames;
  }

  /** Bytes received that do not yet form a whole frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) return first.subarray(0, n);
    this.chunks = [Buffer.concat(this.chunks)];
    return (this.chunks[0] as Buffer).subarray(0, n);
  }

  private take(n: number): Buffer {
    let first = this.chunks[0] as Buffer;
    if (first.length < n) {
      first = Buffer.concat(this.chunks);
      this.chunks = [first];
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}
