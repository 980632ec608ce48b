// Output of a command, capped: what an agent's context can hold, with a flag when cut.
import type { Readable } from 'node:stream';

export class CappedBuffer {
  private chunks: Buffer[] = [];
  private kept = 0;
  /** Bytes dropped past the cap. */
  dropped = 0;

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

  /** Everything kept so far, and forgets it (poll returns only what is new). */
  take(): { text: string; truncated: boolean; dropped: number } {
    const text = Buffer.concat(this.chunks).toString('utf8');
    const dropped = this.dropped;
    this.chunks = [];
    this.kept = 0;
    this.dropped = 0;
    return { text, truncated: dropped > 0, dropped };
  }
}
