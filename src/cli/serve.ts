// `nanocell serve`: the cell server. --foreground serves in this process (systemd runs it so);
// without it, a detached server is started and this command returns once it answers.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { ensureStateRoot } from '../cell/state.js';
import { helloServer } from '../cell/remote/client.js';
import { PROTOCOL_VERSION } from '../cell/remote/protocol.js';
import { CellServer } from '../server/server.js';
import { loadServeConfig, type PoolConfig } from '../server/poolConfig.js';
import { ServerPools } from '../server/pools.js';
import { NanocellError } from '../util/errors.js';
import type { CliContext } from './context.js';
import { connectServer } from './served.js';
import { VERSION } from './version.js';

const START_TIMEOUT_MS = 15_000;

export function registerServeCommand(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description(
      'run the cell server: `nanocell run` hands its tasks to it, and it owns cells the SDK drives',
    )
    .option('--foreground', 'serve in this process until SIGTERM (what the systemd unit runs)')
    .option('--stop', 'stop the server listening on this state root')
    .option('--config <file>', 'warm pools to keep (YAML; schema/serve.schema.json)')
    .action(async (o: { foreground?: boolean; stop?: boolean; config?: string }) => {
      const root = path.resolve(ctx.stateRoot());
      if (o.stop) return stopServer(root);
      // Read and check the whole config before anything listens or starts.
      const config = o.config ? path.resolve(o.config) : undefined;
      const pools = config ? loadServeConfig(config) : [];
      if (o.foreground) return serveForeground(root, pools);
      return startDetached(root, config);
    });
}

async function serveForeground(root: string, configs: PoolConfig[]): Promise<void> {
  const log = (m: string) => process.stderr.write(`nanocell serve: ${m}\n`);
  const pools = new ServerPools();
  const server = await CellServer.listen({ stateRoot: root, version: VERSION, log, pools });
  try {
    pools.start(configs, root, log);
  } catch (e) {
    await server.close();
    throw e;
  }
  log(`pid ${process.pid} listening on ${server.socketPath} (protocol v${PROTOCOL_VERSION})`);
  for (const p of pools.stats()) log(`warm pool "${p.name}": ${p.size} cells`);
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => resolve());
  });
  log('stopping: running tasks are stopped and its cells destroyed, their change sets kept');
  await server.close();
  await pools.close();
}

async function startDetached(root: string, config: string | undefined): Promise<void> {
  const layout = ensureStateRoot(root);
  const logFile = path.join(root, 'serve.log');
  const fd = fs.openSync(logFile, 'a', 0o600);
  const child = spawn(
    process.execPath,
    [
      process.argv[1]!,
      '--state-root',
      root,
      'serve',
      '--foreground',
      ...(config ? ['--config', config] : []),
    ],
    { detached: true, stdio: ['ignore', fd, fd] },
  );
  fs.closeSync(fd);
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const s = await connectServer(layout.serverSocket);
    if (s) {
      const h = await helloServer(s).finally(() => s.close());
      process.stdout.write(`nanocell serve: pid ${h.pid} on ${layout.serverSocket}\n`);
      return;
    }
    await sleep(50);
  }
  throw new NanocellError(
    `the cell server did not start (see ${logFile})`,
    'run `nanocell serve --foreground` to see why',
    'STATE',
  );
}

async function stopServer(root: string): Promise<void> {
  const socket = ensureStateRoot(root).serverSocket;
  const s = await connectServer(socket);
  if (!s) {
    throw new NanocellError(`no cell server listens on ${socket}`, 'nothing to stop', 'STATE');
  }
  const { pid } = await helloServer(s).finally(() => s.close());
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 600 && fs.existsSync(socket); i++) await sleep(50);
  process.stdout.write(`nanocell serve: stopped pid ${pid}\n`);
}
