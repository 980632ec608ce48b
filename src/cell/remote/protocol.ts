// The cell server's wire protocol (docs/architecture.md, "Cell server"): JSON lines over a
// unix stream socket. Every message carries the protocol version `v`; a side that meets another
// version answers with one error naming both versions and closes. A connection carries many
// requests at once: each names an `id` of the client's choosing, and every reply, stream
// frame and final answer of that request carries it back. Requests are checked here with zod
// (requests.ts) before anything acts on them.
import { NanocellError, type ErrorKind } from '../../util/errors.js';

/** 2: many requests per connection by `id`; server-owned cells (create, exec, files, destroy). */
export const PROTOCOL_VERSION = 2;
/** A line longer than this is refused (and skipped up to its newline): both sides parse it. */
export const MAX_LINE_BYTES = 8 * 1024 * 1024;
/** Raw bytes per stdout/stderr frame, before base64. */
export const CHUNK_BYTES = 64 * 1024;
/** Raw bytes of one files.read or files.write: its base64 fits a line with room to spare. */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;

export interface WireError {
  message: string;
  fix: string;
  kind: ErrorKind;
}

/** What the server sends; `id` is the request's (null for a line that named none). */
export type ServerMessage =
  | { v: number; id: RequestId | null; type: 'error'; error: WireError }
  | { v: number; id: RequestId; type: 'result'; result: unknown }
  | { v: number; id: RequestId; type: 'started' }
  | { v: number; id: RequestId; type: 'stdout' | 'stderr'; data: string }
  | { v: number; id: RequestId; type: 'event'; event: Record<string, unknown> }
  | { v: number; id: RequestId; type: 'cell'; cell: string; warmPool?: string };

export type RequestId = number | string;

/** What `list` and `info` tell about a cell. */
export interface CellInfo {
  id: string;
  taskId: string;
  session: string;
  workspace: string;
  startedAt: number;
  /** The argv of each command running in it now. */
  commands: string[][];
}

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

export function protocolError(what: string): NanocellError {
  return new NanocellError(
    `cell server protocol: ${what}`,
    `speak protocol v${PROTOCOL_VERSION} (docs/architecture.md, "Cell server")`,
    'USAGE',
  );
}

/** Either side met a message of another protocol version: one line, naming both. */
export function versionMismatch(theirs: unknown, they: 'client' | 'server'): NanocellError {
  const v = typeof theirs === 'number' ? `v${theirs}` : `version ${JSON.stringify(theirs)}`;
  return they === 'server'
    ? new NanocellError(
        `the cell server speaks protocol ${v}, this nanocell speaks v${PROTOCOL_VERSION}`,
        'restart it with this nanocell: nanocell serve --stop, then nanocell serve',
        'STATE',
      )
    : new NanocellError(
        `the client speaks protocol ${v}, this cell server speaks v${PROTOCOL_VERSION}`,
        'use the nanocell that started the server, or restart the server with yours',
        'USAGE',
      );
}

export const encode = (m: object): string => `${JSON.stringify({ v: PROTOCOL_VERSION, ...m })}\n`;
