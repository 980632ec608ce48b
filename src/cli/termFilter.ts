// What a task prints reaches the user's terminal, and a terminal obeys escape sequences: OSC 52
// writes the clipboard, OSC 0/2 retitle the window, CSI moves the cursor, clears the screen or
// rewrites lines above, DCS/APC reach terminal extensions. On a terminal `run` keeps text,
// newlines, carriage returns (progress bars), tabs, backspace, bell and colour (SGR) and drops
// every other sequence whole. Stateful, so a sequence split across chunks is still recognised.

const ESC = 0x1b;
/** Longest SGR parameter string kept; anything longer is not colour and is dropped. */
const MAX_CSI = 64;

type State =
  | 'ground'
  | 'esc' // after ESC
  | 'escInter' // ESC + intermediate bytes (charset selection, DECALN, ...)
  | 'csi' // after ESC [ or CSI
  | 'str' // inside OSC/DCS/SOS/PM/APC, until BEL or ST
  | 'strEsc'; // ESC seen inside a string (ST is ESC \)

export class TerminalFilter {
  private state: State = 'ground';
  private csi = '';
  private csiOverflow = false;
  /** Characters dropped so far (for tests and the report of what was filtered). */
  dropped = 0;

  /** Filters decoded text; keep one filter per output stream. */
  push(text: string): string {
    let out = '';
    for (const ch of text) {
      const c = ch.codePointAt(0)!;
      switch (this.state) {
        case 'ground':
          if (c === ESC) this.state = 'esc';
          else if (c === 0x9b) this.enterCsi();
          else if (c === 0x9d || c === 0x90 || c === 0x98 || c === 0x9e || c === 0x9f)
            this.state = 'str';
          else if (isKeptText(c)) {
            out += ch;
            continue;
          }
          this.dropped++;
          break;
        case 'esc':
          this.dropped++;
          if (c === 0x5b) this.enterCsi();
          else if (c === 0x5d || c === 0x50 || c === 0x58 || c === 0x5e || c === 0x5f)
            this.state = 'str';
          else if (c >= 0x20 && c <= 0x2f) this.state = 'escInter';
          else if (c === ESC) this.state = 'esc';
          else this.state = 'ground';
          break;
        case 'escInter':
          this.dropped++;
          if (c < 0x20 || c > 0x2f) this.state = 'ground';
          break;
        case 'csi':
          if (c >= 0x40 && c <= 0x7e) {
            // Only SGR with plain numeric parameters passes: colour, bold, underline, reset.
            if (ch === 'm' && !this.csiOverflow && /^[0-9;:]*$/.test(this.csi))
              out += `\x1b[${this.csi}m`;
            else this.dropped += this.csi.length + 3;
            this.state = 'ground';
          } else if (c >= 0x20 && c <= 0x3f) {
            if (this.csi.length < MAX_CSI) this.csi += ch;
            else this.csiOverflow = true;
          } else {
            // A control inside a CSI aborts it (as terminals do); nothing of it is shown.
            this.dropped += this.csi.length + 3;
            this.state = c === ESC ? 'esc' : 'ground';
          }
          break;
        case 'str':
          this.dropped++;
          if (c === 0x07 || c === 0x9c) this.state = 'ground';
          else if (c === ESC) this.state = 'strEsc';
          break;
        case 'strEsc':
          this.dropped++;
          this.state = c === 0x5c ? 'ground' : c === ESC ? 'strEsc' : 'str';
          break;
      }
    }
    return out;
  }

  private enterCsi(): void {
    this.state = 'csi';
    this.csi = '';
    this.csiOverflow = false;
  }
}

/** Printable text and the harmless controls: tab, newline, carriage return, backspace, bell. */
function isKeptText(c: number): boolean {
  if (c === 0x09 || c === 0x0a || c === 0x0d || c === 0x08 || c === 0x07) return true;
  return c >= 0x20 && c !== 0x7f && !(c >= 0x80 && c <= 0x9f);
}
