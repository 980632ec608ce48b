// What the network benches (bench/net.ts, bench/transparent.ts) share: the target servers in a
// node process of their own on SERVER_IP, the scratch directory, the python client run on the
// host or in a cell, and the median round.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { Cell } from '../../src/cell/cell.js';

export const SERVER_IP = '127.0.0.8';
/** The client is the same python everywhere: /usr/bin/python3, as in the cell. */
const PYTHON = '/usr/bin/python3';

type ServerKind = 'http' | 'echo' | 'source';

const SERVER_CODE: Record<ServerKind, string> = {
  http: `
const h = http.createServer((q, r) => { r.setHeader('connection', 'close'); r.end('ok'); });
h.listen(0, '${SERVER_IP}', () => done('http')(h));`,
  echo: `
const e = net.createServer((s) => { s.on('error', () => {}); s.pipe(s); });
e.listen(0, '${SERVER_IP}', () => done('echo')(e));`,
  // Sends as many bytes as the first line asks for, then ends.
  source: `
const chunk = Buffer.alloc(1 << 20, 97);
const src = net.createServer((s) => {
  s.on('error', () => {});
  let line = '';
  s.on('data', function first(d) {
    line += d.toString();
    if (!line.includes('\\n')) return;
    s.off('data', first);
    let left = Number(line.trim());
    const pump = () => {
      while (left > 0) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        if (!s.write(piece)) return void s.once('drain', pump);
      }
      s.end();
    };
    pump();
  });
});
src.listen(0, '${SERVER_IP}', () => done('source')(src));`,
};

/**
 * Starts the servers in their own process, so the proxy (in the bench's process, like the
 * supervisor) does not share an event loop with them. Kill `child` when done.
 */
export function startBenchServers<K extends ServerKind>(
  kinds: readonly K[],
): { child: ChildProcess; ports: Promise<Record<K, number>> } {
  const script = `
const http = require('http'), net = require('net');
const out = {};
let pending = ${kinds.length};
const done = (k) => (s) => { out[k] = s.address().port; if (--pending === 0) console.log(JSON.stringify(out)); };
${kinds.map((k) => SERVER_CODE[k]).join('\n')}
`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ports = new Promise<Record<K, number>>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()) as never));
    child.once('exit', () => reject(new Error('the bench servers exited')));
  });
  return { child, ports };
}

/** A scratch directory under /var/tmp (world-readable: the cell's user reads the project). */
export function benchDir(name: string): { base: string; project: string } {
  const base = fs.mkdtempSync(`/var/tmp/nanocell-bench-${name}-`);
  fs.chmodSync(base, 0o755);
  const project = path.join(base, 'project');
  fs.mkdirSync(project);
  return { base, project };
}

export type Json = Record<string, number | string | string[]>;

/** Runs the python client `script` on the host and parses the JSON it prints. */
export async function clientOnHost<T = Json>(script: string, args: string[]): Promise<T> {
  const r = await execa(PYTHON, ['-c', script, ...args]);
  return JSON.parse(r.stdout) as T;
}

/** Runs the python client `script` in the cell and parses the JSON it prints. */
export async function clientInCell<T = Json>(
  cell: Cell,
  script: string,
  args: string[],
): Promise<T> {
  const r = await cell.run([PYTHON, '-c', script, ...args]);
  if (r.exitCode !== 0) throw new Error(`cell client failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** The round whose `key` is the median; `n` becomes the total over all rounds. */
export function medianRound<T extends Record<string, unknown>>(rounds: T[], key: string): T {
  const sorted = [...rounds].sort((a, b) => Number(a[key]) - Number(b[key]));
  const mid = sorted[Math.floor(sorted.length / 2)]!;
  const n = rounds.reduce((sum, r) => sum + (typeof r.n === 'number' ? r.n : 1), 0);
  return { ...mid, n, rounds: rounds.length } as T;
}

/** A figure for the markdown table: `d` decimals, '-' when missing. */
export const fixed = (n: number | undefined, d = 3): string =>
  n === undefined ? '-' : n.toFixed(d);
