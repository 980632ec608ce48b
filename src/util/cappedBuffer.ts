// Output of a command, capped: what an agent's context can hold, with a flag when cut.
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';

export class CappedBuffer {
  private chunks: Buffer[] = [];
  private kept = 0;
  /** Bytes dropped past the cap. */
  dropped = 0;
  /** Holds a character split between two reads, so that neither read mangles it. */
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly cap: number) {}

  attach(src: Readable): this {
    src.on('data', (c: Buffer) => this.push(c));
    return this;
  }

  push(c: Buffer): void {
    const room = this.cap - this.kept;
    if (room > 0) {
      const part = c.length <= room ? c : c.subarray(0, room);
      this.chunks.push(part);
      this.kept += part.length;
    }
    this.dropped += Math.max(0, c.length - Math.max(room, 0));
  }

  /**
   * Everything kept so far as text, and forgets it (a poll returns only what is new). An
   * incomplete character at the end waits for the next take, unless `final` (no more output).
   */
  take(final = true): { text: string; truncated: boolean; dropped: number } {
    const buf = Buffer.concat(this.chunks);
    const text = final ? this.decoder.end(buf) : this.decoder.write(buf);
    const dropped = this.dropped;
    this.chunks = [];
    this.kept = 0;
    this.dropped = 0;
    return { text, truncated: dropped > 0, dropped };
  }
}
