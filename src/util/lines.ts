// Newline-delimited protocols (the control socket, the cell server) read their peers' bytes
// through this: a line is never held past its cap, however the peer sends it.

/**
 * Splits a byte stream into lines without ever holding more than MAX_LINE_BYTES of one: a
 * longer line is reported once as an overflow and skipped up to its newline.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onOverflow: () => void,
    private readonly max: number,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      if (!this.skipping) {
        const piece = chunk.subarray(start, end);
        if (this.size + piece.length > this.max) {
          this.parts = [];
          this.size = 0;
          this.skipping = true;
          this.onOverflow();
        } else {
          this.parts.push(piece);
          this.size += piece.length;
        }
      }
      if (nl < 0) return;
      if (!this.skipping) {
        const line = Buffer.concat(this.parts).toString('utf8');
        this.parts = [];
        this.size = 0;
        if (line.trim() !== '') this.onLine(line);
      }
      this.skipping = false;
      start = nl + 1;
    }
  }
}
