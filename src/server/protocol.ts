// The cell server's wire protocol (docs/architecture.md, "Cell server"): JSON lines over a
// unix stream socket, one request per connection. Every message carries the protocol
// version `v`; a side that meets another version answers with an error and closes.
import { NanocellError, type ErrorKind } from '../util/errors.js';

export const PROTOCOL_VERSION = 1;
/** A line longer than this is refused: both sides parse what the other sends. */
const MAX_LINE_BYTES = 8 * 1024 * 1024;

export interface WireError {
  message: string;
  fix: string;
  kind: ErrorKind;
}

/** What `nanocell run` sends: the task as the CLI resolved it (policy included). */
export interface RunRequest {
  policy: unknown;
  workspace: string;
  command: string[];
  session?: string;
  extraAllowNet?: string[];
  changes?: 'keep' | 'apply' | 'discard';
  /** The client streams stdin frames; otherwise the task's stdin is empty. */
  stdin: boolean;
}

export type ClientMessage =
  | { v: number; type: 'hello' }
  | { v: number; type: 'run'; task: RunRequest }
  | { v: number; type: 'stdin'; data?: string; end?: boolean }
  /** First: stop the task (still collects); second: give the collection up. */
  | { v: number; type: 'cancel' };

export type ServerMessage =
  | { v: number; type: 'hello'; server: 'nanocell'; version: string; pid: number }
  | { v: number; type: 'stdout' | 'stderr'; data: string }
  | { v: number; type: 'event'; event: Record<string, unknown> }
  | { v: number; type: 'report'; report: unknown }
  | { v: number; type: 'error'; error: WireError };

export function toWireError(e: unknown): WireError {
  if (e instanceof NanocellError) return { message: e.message, fix: e.fix, kind: e.kind };
  return {
    message: `internal error in nanocell serve: ${(e as Error)?.message ?? String(e)}`,
    fix: 'please report this bug',
    kind: 'INTERNAL',
  };
}

export function fromWireError(w: WireError): NanocellError {
  return new NanocellError(w.message, w.fix, w.kind);
}

/** Splits a byte stream into JSON messages; a bad line or an overlong one is an error. */
export class LineReader {
  private buf = '';

  constructor(
    private readonly onMessage: (m: unknown) => void,
    private readonly onError: (e: NanocellError) => void,
  ) {}

  push(chunk: Buffer): void {
    this.buf += chunk.toString('utf8');
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.trim() === '') continue;
      let m: unknown;
      try {
        m = JSON.parse(line);
      } catch {
        return this.onError(protocolError('a line is not JSON'));
      }
      this.onMessage(m);
    }
    if (this.buf.length > MAX_LINE_BYTES) this.onError(protocolError('a line is too long'));
  }
}

export function protocolError(what: string): NanocellError {
  return new NanocellError(
    `cell server protocol: ${what}`,
    `speak protocol v${PROTOCOL_VERSION} (docs/architecture.md, "Cell server")`,
    'USAGE',
  );
}

export const line = (m: ServerMessage | ClientMessage): string => `${JSON.stringify(m)}\n`;
