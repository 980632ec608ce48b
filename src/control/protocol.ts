// The control socket's protocol: newline-delimited JSON, one object a line, every object
// carrying `v` (the protocol version). A connection opens with one request; `exec` then turns
// the connection into that command's stream (stdin, signals, terminal resizes in; output and
// the exit out), the other verbs answer and may keep the connection for another request.
// Everything a client sends is checked here: a bad request is answered with an error and the
// connection keeps serving; a bad line inside an exec's stream ends that stream (and its
// command), since a client that sends one no longer knows what the command received.
import { z } from 'zod';
import { LineSplitter as Lines } from '../util/lines.js';

/** 2: `exec` with a terminal (`tty` size, `resize` input). A v1 client is refused by name. */
const CONTROL_PROTOCOL_VERSION = 2;
type V = typeof CONTROL_PROTOCOL_VERSION;
/** A line longer than this is refused (and skipped up to its newline). Stdin chunks fit. */
export const MAX_LINE_BYTES = 1024 * 1024;
/** Raw bytes per stdin or output message, before base64. */
export const CHUNK_BYTES = 64 * 1024;
/** How long `stop` lets the commands handle SIGTERM before the cell is ended. */
export const DEFAULT_STOP_GRACE_MS = 10_000;

/** Columns or rows of an exec's terminal: no real window is larger (winsize holds 65535). */
const MAX_TTY_DIMENSION = 4096;

const v = z.literal(CONTROL_PROTOCOL_VERSION);
const dimension = z.number().int().min(1).max(MAX_TTY_DIMENSION);
const ttySize = { cols: dimension, rows: dimension };
const base64 = z
  .string()
  .max(MAX_LINE_BYTES)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/);

const requestSchemas = {
  hello: z.strictObject({ v, verb: z.literal('hello') }),
  exec: z.strictObject({
    v,
    verb: z.literal('exec'),
    argv: z
      .array(z.string().max(128 * 1024))
      .min(1)
      .max(4096),
    stdin: z.boolean().optional(),
    cwd: z.string().max(4096).optional(),
    env: z.record(z.string().max(1024), z.string().max(128 * 1024)).optional(),
    /** A terminal in the cell of this size; its output comes as `stdout`, stdin is typed keys. */
    tty: z.strictObject(ttySize).optional(),
  }),
  stop: z.strictObject({
    v,
    verb: z.literal('stop'),
    graceMs: z.number().int().min(0).max(3_600_000).optional(),
  }),
  kill: z.strictObject({ v, verb: z.literal('kill') }),
  egress: z.strictObject({
    v,
    verb: z.literal('egress'),
    host: z.string().min(1).max(300),
    port: z.number().int().min(1).max(65535),
    decision: z.enum(['once', 'cell', 'deny']),
  }),
} as const;

type ControlVerb = keyof typeof requestSchemas;
export type ControlRequest = {
  [K in ControlVerb]: z.infer<(typeof requestSchemas)[K]>;
}[ControlVerb];

/** What a client sends while its exec runs. */
const execInputSchema = z.discriminatedUnion('op', [
  z.strictObject({ v, op: z.literal('stdin'), data: base64 }),
  z.strictObject({ v, op: z.literal('eof') }),
  z.strictObject({ v, op: z.literal('signal'), signal: z.number().int().min(1).max(64) }),
  z.strictObject({ v, op: z.literal('resize'), ...ttySize }),
]);
export type ExecInput = z.infer<typeof execInputSchema>;

/** What the server sends. */
export type ControlReply =
  | { v: V; type: 'error'; error: string; fix: string }
  | { v: V; type: 'hello'; taskId: string; session: string; startedAt: number }
  | { v: V; type: 'ok'; verb: 'stop' | 'kill' | 'egress' }
  | { v: V; type: 'ended' }
  | { v: V; type: 'started' }
  | { v: V; type: 'stdout' | 'stderr'; data: string }
  | {
      v: V;
      type: 'exit';
      exitCode: number;
      endReason: string;
      signal?: number;
      outputTruncated: boolean;
    };

export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
}

function parseJson(line: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ProtocolError('the line is not JSON', 'send one JSON object per line');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProtocolError('the line is not a JSON object', 'send one JSON object per line');
  }
  const o = value as Record<string, unknown>;
  if (o.v !== CONTROL_PROTOCOL_VERSION) {
    throw new ProtocolError(
      `protocol version ${JSON.stringify(o.v)} is not spoken here (this supervisor speaks ${CONTROL_PROTOCOL_VERSION})`,
      'use a nanocell of the same version as the one that started the cell',
    );
  }
  return o;
}

function checked<T>(schema: z.ZodType<T>, o: unknown, what: string): T {
  const r = schema.safeParse(o);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
  throw new ProtocolError(
    `bad ${what}${where}: ${issue?.message ?? 'invalid'}`,
    'see docs/architecture.md, "Control socket"',
  );
}

export function parseRequest(line: string): ControlRequest {
  const o = parseJson(line);
  const verb = o.verb;
  if (typeof verb !== 'string' || !Object.hasOwn(requestSchemas, verb)) {
    throw new ProtocolError(
      `unknown verb ${JSON.stringify(verb)}`,
      `send one of ${Object.keys(requestSchemas).join(', ')}`,
    );
  }
  return checked(
    requestSchemas[verb as ControlVerb] as z.ZodType<ControlRequest>,
    o,
    `${verb} request`,
  );
}

export function parseExecInput(line: string): ExecInput {
  const o = parseJson(line);
  const op = o.op;
  if (typeof op !== 'string' || !EXEC_OPS.includes(op)) {
    throw new ProtocolError(
      `unknown exec input ${JSON.stringify(op)}`,
      `send one of ${EXEC_OPS.join(', ')}`,
    );
  }
  return checked(execInputSchema, o, `${op} input`);
}

const EXEC_OPS: readonly string[] = execInputSchema.options.map((o) => o.shape.op.value);

/** The error a client gets for a reply it cannot read (the supervisor is trusted otherwise). */
export function localError(error: string, fix: string): ControlReply {
  return { v: CONTROL_PROTOCOL_VERSION, type: 'error', error, fix };
}

/** A reply line as the client reads it: shape-checked loosely, the server is trusted. */
export function parseReply(line: string): ControlReply {
  const o = parseJson(line);
  if (typeof o.type !== 'string')
    throw new ProtocolError('reply without a type', 'upgrade nanocell');
  return o as unknown as ControlReply;
}

export function encode(msg: object): string {
  return `${JSON.stringify({ v: CONTROL_PROTOCOL_VERSION, ...msg })}\n`;
}

/** The control socket's lines: at most MAX_LINE_BYTES (src/util/lines.ts splits them). */
export class LineSplitter extends Lines {
  constructor(onLine: (line: string) => void, onOverflow: () => void, max = MAX_LINE_BYTES) {
    super(onLine, onOverflow, max);
  }
}
