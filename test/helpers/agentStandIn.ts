// What the agent preset tests share: a loopback TLS stand-in for an agent's API host (its CA
// trusted by nanocell through NODE_EXTRA_CA_CERTS, never by the cell), a home of the test's
// own for the agent's install, the CLI run with both, and a scan for the key's bytes.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { spawnNanocell } from './cells.js';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export interface StandIn {
  /** The loopback address it listens on, port 443. */
  addr: string;
  caFile: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

/**
 * A TLS server for `host` on port 443 of a loopback address of its own (`octet` tells two
 * apart), so the agent talks to it as to the real API through `network.hosts`.
 */
export async function startStandIn(
  dir: string,
  host: string,
  octet: number,
  handle: (req: SeenRequest, body: string, res: ServerResponse) => void,
): Promise<StandIn> {
  const addr = `127.${100 + (process.pid % 100)}.${Math.floor(process.pid / 100) % 250}.${octet}`;
  const key = path.join(dir, `${host}.key`);
  const caFile = path.join(dir, `${host}.crt`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
      .concat(['-keyout', key, '-out', caFile, '-days', '1', '-subj', `/CN=${host}`])
      .concat(['-addext', `subjectAltName=DNS:${host}`]),
    { stdio: 'ignore' },
  );
  const seen: SeenRequest[] = [];
  const server = https.createServer(
    { key: fs.readFileSync(key), cert: fs.readFileSync(caFile) },
    (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
        seen.push(r);
        handle(r, body, res);
      });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(443, addr, resolve);
  });
  const close = () => new Promise<void>((r) => server.close(() => r()));
  return { addr, caFile, seen, close };
}

/** A policy that extends the preset only to pin its API host to the stand-in. */
export function pinPolicy(dir: string, host: string, s: StandIn): string {
  const file = path.join(dir, `pin-${host}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({ network: { hosts: { [host]: s.addr }, cidrs: [`${s.addr}/32`] } }),
  );
  return file;
}

/** The test's home as the invoking user's (not a sudo caller's), and the stand-in's CA. */
export function agentEnv(home: string, s: StandIn, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...process.env, HOME: home, SUDO_USER: '', NODE_EXTRA_CA_CERTS: s.caFile, ...env };
}

export function runCli(args: string[], stateRoot: string, env: NodeJS.ProcessEnv) {
  return new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawnNanocell(args, { stateRoot, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    child.on('close', (code) => resolve({ status: code ?? 137, stdout, stderr }));
  });
}

/** Every file under `root` whose bytes contain `needle`. */
export function filesContaining(root: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.readFileSync(p).includes(needle)) hits.push(p);
    }
  };
  walk(root);
  return hits;
}
