// The figures of issue #16, in one run, each as a ratio against its baseline measured
// interleaved with it (the host is shared and its load moves; interleaving keeps both sides
// under the same load):
//   CLI start-up:   `nanocell --version` against `node -e 0`
//   MCP overhead:   the MCP `run` tool (SDK client, stdio) against `cell.run` in-process
//   served run:     `nanocell run` through `nanocell serve` (with a warm pool for the project)
//                   from the native front (what `nanocell` on the PATH is) and from the node
//                   CLI, and in-process, each against srt's CLI, all four interleaved
//   remote cell:    `RemoteCell.run` in a cell of a `nanocell serve` process against `cell.run`
//
//   node --import ./bench/register.mjs bench/server.ts [--n 20]
// Root only; needs `npm run build`. Prints JSON to stdout.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Cell } from '../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../src/policy/load.js';
import { RemoteCell } from '../src/cell/remote/remoteCell.js';
import { CellServer } from '../src/server/server.js';
import { loadServeConfig } from '../src/server/poolConfig.js';
import { ServerPools } from '../src/server/pools.js';
import { setupSrt } from './suite/peers.js';
import { round, stat } from './suite/stats.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(repo, 'dist', 'cli', 'nanocell.mjs');
const FRONT = path.join(repo, 'native', 'build', 'nanocell');
const nArg = process.argv.indexOf('--n');
const N = nArg > 0 ? Number(process.argv[nArg + 1]) : 20;

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

function timeSync(argv: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore', env });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}`);
  return ms(t0);
}

function timeAsync(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', env });
    c.on('close', (code) => (code === 0 ? resolve(ms(t0)) : reject(new Error(`exit ${code}`))));
  });
}

function ratio(name: string, what: number[], base: number[]) {
  const a = stat(what);
  const b = stat(base);
  return {
    figure: name,
    n: a.n,
    p50Ms: round(a.p50),
    baselineP50Ms: round(b.p50),
    deltaMs: round(a.p50 - b.p50),
    ratio: round(a.p50 / b.p50, 2),
  };
}

async function cliStartup() {
  const cli: number[] = [];
  const front: number[] = [];
  const node: number[] = [];
  for (let i = 0; i < N * 2; i++) {
    node.push(timeSync([process.execPath, '-e', '0']));
    cli.push(timeSync([process.execPath, CLI, '--version']));
    // `nanocell --version` from the PATH: the front hands it to the node CLI.
    front.push(timeSync([FRONT, '--version']));
  }
  return [
    ratio('CLI --version vs node -e 0', cli, node),
    ratio('nanocell --version (native front, then the CLI) vs node -e 0', front, node),
  ];
}

async function mcpVsDirect(project: string, stateRoot: string) {
  const policy = resolvePolicy(parsePolicy({}));
  const cell = await Cell.create({ policy, workspace: project, stateRoot });
  const client = new Client({ name: 'bench', version: '0' });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'mcp'],
      cwd: project,
      env: { ...(process.env as Record<string, string>), NANOCELL_STATE_ROOT: stateRoot },
    }),
  );
  const created = (await client.callTool({ name: 'create_cell', arguments: {} })) as {
    content: Array<{ text: string }>;
  };
  const { cell_id } = JSON.parse(created.content[0]!.text) as { cell_id: string };
  const viaMcp: number[] = [];
  const direct: number[] = [];
  try {
    for (let i = 0; i < N; i++) {
      let t0 = process.hrtime.bigint();
      await cell.run(['sh', '-c', 'true']);
      direct.push(ms(t0));
      t0 = process.hrtime.bigint();
      await client.callTool({ name: 'run', arguments: { cell_id, command: 'true' } });
      viaMcp.push(ms(t0));
    }
  } finally {
    await client.close();
    await cell.destroy();
  }
  return ratio('MCP run vs cell.run', viaMcp, direct);
}

async function servedVsInProcess(project: string, stateRoot: string) {
  // A pool for the project, as a harness would configure it: served runs claim warm cells.
  const config = path.join(path.dirname(project), 'serve.yaml');
  fs.writeFileSync(config, `pools:\n  - name: bench\n    workspace: ${project}\n    size: 2\n`);
  const pools = new ServerPools();
  const server = await CellServer.listen({ stateRoot, version: 'bench', pools });
  pools.start(loadServeConfig(config), stateRoot, (m) => process.stderr.write(`${m}\n`));
  const srt = setupSrt(path.join(repo, 'bench'), path.dirname(project), project, (m) =>
    process.stderr.write(`${m}\n`),
  );
  const env = { ...process.env, NANOCELL_STATE_ROOT: stateRoot };
  const run = ['run', '--quiet', '--discard', '--workspace', project, '--', 'true'];
  const front: number[] = [];
  const served: number[] = [];
  const here: number[] = [];
  const srtRuns: number[] = [];
  try {
    for (let i = 0; i < Math.ceil(N / 2); i++) {
      await pools.whenFull();
      front.push(await timeAsync([FRONT, ...run], env));
      await pools.whenFull();
      served.push(await timeAsync([process.execPath, CLI, ...run], env));
      // What a user without a server gets: the front hands the run to the node CLI.
      here.push(await timeAsync([FRONT, ...run], { ...env, NANOCELL_NO_SERVER: '1' }));
      if (!srt.unavailable) {
        const t0 = process.hrtime.bigint();
        await srt.run();
        srtRuns.push(ms(t0));
      }
    }
  } finally {
    await server.close();
    await pools.close();
  }
  const figures = [
    ratio('nanocell run served (warm pool): native front vs node CLI', front, served),
    ratio('nanocell run served (warm pool, node CLI) vs in-process', served, here),
  ];
  if (srt.unavailable) {
    process.stderr.write(`srt unavailable: ${srt.unavailable}\n`);
  } else {
    figures.push(
      ratio(
        'nanocell run served (warm pool, native front) vs srt CLI (target ≤ 0.25)',
        front,
        srtRuns,
      ),
      ratio('nanocell run served (warm pool, node CLI) vs srt CLI', served, srtRuns),
      ratio('nanocell run in-process vs srt CLI (target ≤ 0.5)', here, srtRuns),
    );
  }
  return figures;
}

async function remoteVsDirect(project: string, stateRoot: string) {
  const server = spawn(
    process.execPath,
    [CLI, '--state-root', stateRoot, 'serve', '--foreground'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let log = '';
  server.stderr.on('data', (d: Buffer) => (log += d.toString()));
  while (!log.includes('listening on')) {
    if (server.exitCode !== null) throw new Error(`nanocell serve exited: ${log}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const policy = resolvePolicy(parsePolicy({}));
  const cell = await Cell.create({ policy, workspace: project, stateRoot });
  const remote = await RemoteCell.create({ policy, workspace: project, stateRoot });
  const viaServer: number[] = [];
  const direct: number[] = [];
  try {
    for (let i = 0; i < N; i++) {
      let t0 = process.hrtime.bigint();
      await cell.run(['true']);
      direct.push(ms(t0));
      t0 = process.hrtime.bigint();
      await remote.run(['true']);
      viaServer.push(ms(t0));
    }
  } finally {
    await cell.destroy();
    await remote.destroy();
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  return ratio('RemoteCell.run (nanocell serve) vs cell.run', viaServer, direct);
}

const base = fs.mkdtempSync(path.join('/var/tmp', 'nanocell-bench-server-'));
// The cell's uid range must reach the project through it, as through any project's parents.
fs.chmodSync(base, 0o755);
try {
  const project = path.join(base, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'README.md'), 'bench\n');
  const stateRoot = path.join(base, 'state');
  const figures = [
    ...(await cliStartup()),
    await mcpVsDirect(project, stateRoot),
    ...(await servedVsInProcess(project, stateRoot)),
    await remoteVsDirect(project, stateRoot),
  ];
  process.stdout.write(
    `${JSON.stringify({ host: { cpus: os.cpus().length, load: os.loadavg() }, n: N, figures }, null, 2)}\n`,
  );
} finally {
  spawnSync('umount', ['-R', '-l', path.join(base, 'state')], { stdio: 'ignore' });
  fs.rmSync(base, { recursive: true, force: true });
}
