// A cell server in the test's own process over a fresh sandbox, for each test of a file: its
// log lines kept, closed and cleaned up after each test, even a failed one. Clients must then
// run asynchronously (a spawnSync would block the loop the server answers on).
import { afterEach, beforeEach } from 'vitest';
import { CellServer } from '../../src/server/server.js';
import { makeSandbox, type Sandbox } from './cells.js';

export interface InProcessServer {
  readonly sb: Sandbox;
  /** Undefined once stop() closed it. */
  readonly server: CellServer | undefined;
  readonly log: string[];
  /** Closes the server before the test ends (to test what clients do without one). */
  stop(): Promise<void>;
}

export function inProcessServer(files: Record<string, string>): InProcessServer {
  let sb: Sandbox | undefined;
  let server: CellServer | undefined;
  const log: string[] = [];
  const t: InProcessServer = {
    get sb() {
      return sb!;
    },
    get server() {
      return server;
    },
    log,
    async stop() {
      const s = server;
      server = undefined;
      await s?.close();
    },
  };
  beforeEach(async () => {
    sb = makeSandbox(files);
    log.length = 0;
    server = await CellServer.listen({
      stateRoot: sb.stateRoot,
      version: 'test',
      log: (m) => log.push(m),
    });
  });
  afterEach(async () => {
    await t.stop();
    sb?.cleanup();
  });
  return t;
}
