// The user's terminal for `run -t`: in raw mode while the task runs, so every key (^C, ^Z,
// arrows) reaches the cell's own terminal and its line discipline, never the host's; restored
// on every ending. The command in the cell never holds this terminal: its output comes back
// over the control channel and is written here by the supervisor.
import type { TtySize } from '../cell/initFrames.js';
import { NanocellError } from '../util/errors.js';

const FALLBACK: TtySize = { cols: 80, rows: 24 };

export class UserTerminal {
  private restored = false;
  // A crash between enter and restore must not leave the user's shell in raw mode.
  private readonly onExit = () => this.restore();

  private constructor() {
    process.stdin.setRawMode(true);
    process.on('exit', this.onExit);
  }

  /** Puts the user's terminal in raw mode; refuses when stdin is not a terminal. */
  static enter(): UserTerminal {
    if (!process.stdin.isTTY) {
      throw new NanocellError(
        '-t needs a terminal on stdin, and stdin is not one',
        'run from a terminal, or use -i to pass stdin without a terminal',
        'USAGE',
      );
    }
    return new UserTerminal();
  }

  size(): TtySize {
    const out = process.stdout;
    if (!out.isTTY) return FALLBACK;
    return { cols: out.columns || FALLBACK.cols, rows: out.rows || FALLBACK.rows };
  }

  /** Follows SIGWINCH (Node's 'resize' on a terminal stdout); returns the unsubscribe. */
  onResize(listener: (size: TtySize) => void): () => void {
    if (!process.stdout.isTTY) return () => undefined;
    const handler = () => listener(this.size());
    process.stdout.on('resize', handler);
    return () => process.stdout.off('resize', handler);
  }

  /** Back to the mode the terminal had before; idempotent. */
  restore(): void {
    if (this.restored) return;
    this.restored = true;
    process.off('exit', this.onExit);
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
  }
}
