// What the cell server does for each request type: one entry per type in requests.ts, each
// given the checked request and answering with its result (or throwing a NanocellError, which
// becomes the request's `error`). A new request is a schema there and an entry here.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderDiff } from '../workspace/diff.js';
import type { CellServerState } from './server.js';
import type { Conn } from './conn.js';
import { protocolError, type RequestId } from '../cell/remote/protocol.js';
import type { Request, RequestType } from './requests.js';
import { execStream, runStream } from './streams.js';
import type { Policy } from '../policy/defaults.js';

interface HandlerContext {
  conn: Conn;
  id: RequestId;
  server: CellServerState;
}

type Handlers = {
  [K in RequestType]: (r: Request<K>, c: HandlerContext) => unknown;
};

export const handlers: Handlers = {
  hello: (_r, { server }) => ({ server: 'nanocell', version: server.version, pid: process.pid }),

  run: (r, { conn, id, server }) => {
    const pool = server.pools?.find(r.task.policy as Policy, r.task.workspace);
    const from = pool ? ` (warm pool "${pool.name}")` : '';
    server.log?.(`run for pid ${conn.peer.pid}: ${JSON.stringify(r.task.command)}${from}`);
    return runStream(conn, id, r.task, { ...server, startCell: server.pools?.starter(pool) });
  },

  // A runCli that opens its connection is served by cliRun.ts (server.ts sends it there).
  runCli: () => {
    throw protocolError(
      "runCli must be a connection's first request: its answer is binary frames, not lines",
    );
  },

  create: async (r, { conn, server }) => {
    const cell = await server.cells.create(r);
    server.log?.(`created cell ${cell.id} for pid ${conn.peer.pid} (${cell.workspace})`);
    return cell;
  },

  list: (_r, { server }) => ({ cells: server.cells.list() }),

  info: (r, { server }) => server.cells.info(r.cell),

  exec: (r, { conn, id, server }) => {
    const x = server.cells.get(r.cell).exec(r.argv, {
      ...(r.env ? { env: r.env } : {}),
      ...(r.cwd !== undefined ? { cwd: r.cwd } : {}),
      ...(r.tty ? { tty: r.tty } : {}),
      ...(r.denialNotes !== undefined ? { denialNotes: r.denialNotes } : {}),
    });
    return execStream(conn, id, x, r.timeoutMs);
  },

  'files.read': async (r, { server }) => {
    const got = await server.cells.get(r.cell).files.read(r.path, {
      maxBytes: r.maxBytes ?? server.maxFileBytes,
    });
    return { content: got.content.toString('base64'), size: got.size, truncated: got.truncated };
  },

  'files.write': async (r, { server }) => {
    const data = Buffer.from(r.data, 'base64');
    await server.cells.get(r.cell).files.write(r.path, data, { parents: r.parents ?? false });
    return {};
  },

  'files.list': (r, { server }) =>
    server.cells
      .get(r.cell)
      .files.list(r.path, r.maxEntries !== undefined ? { maxEntries: r.maxEntries } : {}),

  'files.stat': (r, { server }) => server.cells.get(r.cell).files.stat(r.path),

  'files.remove': async (r, { server }) => {
    await server.cells.get(r.cell).files.remove(r.path, { recursive: r.recursive ?? false });
    return {};
  },

  'files.mkdir': async (r, { server }) => {
    await server.cells.get(r.cell).files.mkdir(r.path, { parents: r.parents ?? false });
    return {};
  },

  previewChanges: async (r, { server }) => ({
    dir: (await server.cells.get(r.cell).previewChanges(path.resolve(r.dir))) ?? null,
  }),

  diff: async (r, { server }) => {
    const cell = server.cells.get(r.cell);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nanocell-serve-diff-'));
    try {
      const dir = await cell.previewChanges(path.join(tmp, 'changes'));
      const text = dir ? renderDiff(dir, cell.workspace) : '';
      const cap = r.maxBytes ?? server.maxFileBytes;
      const bytes = Buffer.from(text, 'utf8');
      return {
        diff: bytes.subarray(0, cap).toString('utf8'),
        truncated: bytes.length > cap,
        changed: dir !== undefined,
      };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  },

  destroy: async (r, { conn, server }) => {
    const summary = await server.cells.destroy(r.cell);
    server.log?.(`destroyed cell ${r.cell} for pid ${conn.peer.pid}`);
    return summary;
  },
};
