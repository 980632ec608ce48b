// Runs nanocell-init as an ordinary child process with fd 3 = a socketpair, as the monitor
// would hand it over, and wraps it in the real InitClient.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { Duplex, Readable } from 'node:stream';
import { InitClient, type ExecHandle } from '../../../src/cell/initClient.js';
import { INIT_BIN } from './nativeBuild.js';

export interface RunningInit {
  child: ChildProcess;
  client: InitClient;
  exited: Promise<number | null>;
  stderr(): string;
}

export function startInit(args: string[], opts: SpawnOptions = {}): RunningInit {
  const child = spawn(INIT_BIN, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout?.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const client = new InitClient(child.stdio[3] as Duplex);
  return { child, client, exited, stderr: () => err };
}

export async function stopInit(init: RunningInit | undefined): Promise<void> {
  if (!init) return;
  if (init.child.exitCode === null && init.child.signalCode === null) {
    init.child.kill('SIGKILL');
  }
  await init.exited;
}

export function collect(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

export const BASE_ENV = ['PATH=/usr/local/bin:/usr/bin:/bin', 'LANG=C'];

export async function run(
  client: InitClient,
  argv: string[],
  opts: { env?: string[]; cwd?: string; stdin?: string } = {},
): Promise<{
  handle: ExecHandle;
  stdout: string;
  stderr: string;
  result: Awaited<ExecHandle['result']>;
}> {
  const handle = client.exec({ argv, env: opts.env ?? BASE_ENV, cwd: opts.cwd ?? '/' });
  if (opts.stdin !== undefined) handle.stdin.end(opts.stdin);
  else handle.stdin.end();
  const [out, err, result] = await Promise.all([
    collect(handle.stdout),
    collect(handle.stderr),
    handle.result,
  ]);
  return { handle, stdout: out.toString(), stderr: err.toString(), result };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}
