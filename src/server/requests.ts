// Every message a client may send the cell server, as zod schemas: a request (answered by one
// `result` or `error` with its id, perhaps after stream frames) or an input to a stream the
// client opened (`exec`, `run`). Nothing reaches a handler before its schema accepted it.
import { z } from 'zod';
import {
  MAX_FILE_BYTES,
  MAX_LINE_BYTES,
  PROTOCOL_VERSION,
  protocolError,
  versionMismatch,
} from '../cell/remote/protocol.js';
import { wirePolicySchema } from './wirePolicy.js';
import type { NanocellError } from '../util/errors.js';

const v = z.literal(PROTOCOL_VERSION);
const id = z.union([z.number().int().nonnegative(), z.string().min(1).max(64)]);
const cell = z.string().regex(/^[a-z0-9]{1,64}$/, 'a cell id is lower-case letters and digits');
const path = z.string().max(4096);
const base64 = (maxBytes: number) =>
  z
    .string()
    .max(Math.ceil(maxBytes / 3) * 4)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64');
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'letters, digits, . _ -');
const dimension = z.number().int().min(1).max(4096);
const tty = z.strictObject({ cols: dimension, rows: dimension });
const env = z.record(z.string().max(1024), z.string().max(128 * 1024));
const argv = z
  .array(z.string().max(128 * 1024))
  .min(1)
  .max(4096);

const req = <T extends string, S extends z.ZodRawShape>(type: T, shape: S) =>
  z.strictObject({ v, id, type: z.literal(type), ...shape });

/** The requests, by type: the server's handler table (server.ts) has one entry for each. */
const requestSchemas = {
  hello: req('hello', {}),
  /** v1's `nanocell run`: one whole task, streamed; the CLI resolved its policy. */
  run: req('run', {
    task: z.strictObject({
      policy: wirePolicySchema,
      workspace: path.min(1),
      command: argv,
      session: name.optional(),
      extraAllowNet: z.array(z.string().max(1024)).max(1000).optional(),
      changes: z.enum(['keep', 'apply', 'discard']).optional(),
      stdin: z.boolean(),
    }),
  }),
  /**
   * The native front's `nanocell run` (native/front/): the arguments after `run` as typed,
   * and the cwd and environment they were typed in. The server reads them as the CLI would
   * (src/task/args/runInputs.ts). Only as a connection's first request: the answer is binary
   * frames, and the connection carries nothing else after it (src/server/cliRun.ts).
   */
  runCli: req('runCli', {
    args: z.array(z.string().max(128 * 1024)).max(4096),
    cwd: path.min(1).refine((p) => p.startsWith('/'), 'cwd must be an absolute path'),
    env,
  }),
  create: req('create', {
    policy: wirePolicySchema,
    workspace: path.min(1),
    session: name.optional(),
    taskId: name.optional(),
    extraAllowNet: z.array(z.string().max(1024)).max(1000).optional(),
  }),
  list: req('list', {}),
  /** One cell's description, as `list` gives it (Cell.connect checks the id with it). */
  info: req('info', { cell }),
  exec: req('exec', {
    cell,
    argv,
    env: env.optional(),
    cwd: path.optional(),
    /** Milliseconds; past it the command is killed (exit 124, endReason timeout). */
    timeoutMs: z.number().int().min(1).max(2_147_483_647).optional(),
    tty: tty.optional(),
    denialNotes: z.boolean().optional(),
  }),
  'files.read': req('files.read', {
    cell,
    path,
    maxBytes: z.number().int().min(0).max(MAX_FILE_BYTES).optional(),
  }),
  'files.write': req('files.write', {
    cell,
    path,
    data: base64(MAX_FILE_BYTES),
    parents: z.boolean().optional(),
  }),
  'files.list': req('files.list', {
    cell,
    path: path.optional(),
    maxEntries: z.number().int().min(0).max(100_000).optional(),
  }),
  'files.stat': req('files.stat', { cell, path }),
  'files.remove': req('files.remove', { cell, path, recursive: z.boolean().optional() }),
  'files.mkdir': req('files.mkdir', { cell, path, parents: z.boolean().optional() }),
  /** The change set so far, collected into `dir` (a path on the server's host). */
  previewChanges: req('previewChanges', { cell, dir: path.min(1) }),
  /** The change set so far as a unified diff, capped at maxBytes. */
  diff: req('diff', {
    cell,
    maxBytes: z
      .number()
      .int()
      .min(0)
      .max(MAX_LINE_BYTES / 2)
      .optional(),
  }),
  destroy: req('destroy', { cell }),
} as const;

/** Inputs to an open stream (the `id` of its exec or run). */
const inputSchemas = {
  stdin: z.strictObject({
    v,
    id,
    type: z.literal('stdin'),
    data: base64(MAX_LINE_BYTES / 2).optional(),
    end: z.boolean().optional(),
  }),
  signal: z.strictObject({
    v,
    id,
    type: z.literal('signal'),
    signal: z.number().int().min(1).max(64),
  }),
  resize: z.strictObject({ v, id, type: z.literal('resize'), ...tty.shape }),
  /** run: first stops the task (still collects), second gives the collection up. */
  cancel: z.strictObject({ v, id, type: z.literal('cancel') }),
} as const;

export type RequestType = keyof typeof requestSchemas;
export type Request<K extends RequestType = RequestType> = z.infer<(typeof requestSchemas)[K]>;
export type StreamInput = z.infer<(typeof inputSchemas)[keyof typeof inputSchemas]>;
export type RunTask = Request<'run'>['task'];

export type Parsed =
  | { kind: 'request'; msg: Request }
  | { kind: 'input'; msg: StreamInput }
  | { kind: 'bad'; id: z.infer<typeof id> | null; error: NanocellError; fatal?: boolean };

const TYPES = [...Object.keys(requestSchemas), ...Object.keys(inputSchemas)];

/** One line from a client: a checked request or input, or why it is refused. */
export function parseLine(line: string): Parsed {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return { kind: 'bad', id: null, error: protocolError('a line is not JSON') };
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o))
    return { kind: 'bad', id: null, error: protocolError('a line is not a JSON object') };
  const m = o as Record<string, unknown>;
  const given = id.safeParse(m.id);
  const mid = given.success ? given.data : null;
  if (m.v !== PROTOCOL_VERSION)
    return { kind: 'bad', id: mid, error: versionMismatch(m.v, 'client'), fatal: true };
  const type = m.type;
  if (typeof type !== 'string' || !TYPES.includes(type)) {
    return {
      kind: 'bad',
      id: mid,
      error: protocolError(`unknown message type ${JSON.stringify(type)}`),
    };
  }
  const isInput = Object.hasOwn(inputSchemas, type);
  const schema = isInput
    ? inputSchemas[type as keyof typeof inputSchemas]
    : requestSchemas[type as RequestType];
  const r = (schema as z.ZodType).safeParse(m);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
    return {
      kind: 'bad',
      id: mid,
      error: protocolError(`bad ${type} request${where}: ${issue?.message ?? 'invalid'}`),
    };
  }
  return isInput
    ? { kind: 'input', msg: r.data as StreamInput }
    : { kind: 'request', msg: r.data as Request };
}
