// Per-cell binding: two cells at once, each with its own proxy and allowances. Neither can use
// the other's proxy or allowances, nor reach the host's loopback services directly.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import type { NetCellEvent } from '../../../src/audit/cellEvents.js';
import type { CellEvent } from '../../../src/cell/types.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, type Sandbox } from '../../helpers/cells.js';
import {
  startEchoServer,
  startWebServer,
  waitFor,
  type EchoServer,
  type WebServer,
} from './cellServers.js';
import { Harness } from './harness.js';

const h = new Harness();
let webA: WebServer;
let webB: WebServer;
let canary: EchoServer;
let sbA: Sandbox;
let sbB: Sandbox;
let cellA: Cell;
let cellB: Cell;
const eventsA: CellEvent[] = [];
const eventsB: CellEvent[] = [];

beforeAll(async () => {
  const gitRoot = h.dir; // no git here
  [webA, webB, canary] = await Promise.all([
    startWebServer(h, '127.0.0.5', gitRoot),
    startWebServer(h, '127.0.0.6', gitRoot),
    startEchoServer(h, '127.0.0.1'),
  ]);
  // Both cells know where both names point; only the allowlists differ.
  const hosts = { 'a.test': '127.0.0.5', 'b.test': '127.0.0.6' };
  const cidrs = ['127.0.0.5/32', '127.0.0.6/32'];
  const policy = (allow: string) =>
    resolvePolicy(parsePolicy({ network: { allow: [allow], hosts, cidrs } }));
  sbA = makeSandbox();
  sbB = makeSandbox();
  // One state root and one session: the closest two cells can be.
  [cellA, cellB] = await Promise.all([
    Cell.create({
      policy: policy(`a.test:${webA.port}`),
      workspace: sbA.project,
      stateRoot: sbA.stateRoot,
      session: 'shared',
      onEvent: (e) => eventsA.push(e),
    }),
    Cell.create({
      policy: policy(`b.test:${webB.port}`),
      workspace: sbB.project,
      stateRoot: sbA.stateRoot,
      session: 'shared',
      onEvent: (e) => eventsB.push(e),
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([cellA, cellB].map((c) => c?.destroy().catch(() => undefined)));
  sbA?.cleanup();
  sbB?.cleanup();
  await h.cleanup();
});

const curl = (c: Cell, url: string) =>
  c.run(['curl', '-sS', '-i', '--noproxy', '', '--max-time', '10', url]);
const netEvents = (all: CellEvent[]) =>
  all.filter((e): e is NetCellEvent => e.type.startsWith('net.'));

describe('per-cell proxies', () => {
  it("gives each cell only its own allowances and records attempts in that cell's trail", async () => {
    const a = `http://a.test:${webA.port}/from`;
    const b = `http://b.test:${webB.port}/from`;
    const [aa, ab, ba, bb] = await Promise.all([
      curl(cellA, `${a}-A`),
      curl(cellA, `${b}-A`),
      curl(cellB, `${a}-B`),
      curl(cellB, `${b}-B`),
    ]);
    expect(aa.stdout).toMatch(/^HTTP\/1\.1 200/);
    expect(bb.stdout).toMatch(/^HTTP\/1\.1 200/);
    expect(ab.stdout).toMatch(
      /^HTTP\/1\.1 403[\s\S]*X-Nanocell-Deny-Reason: nanocell: blocked connect to b\.test:\d+ \(not in network\.allow\)/,
    );
    expect(ba.stdout).toMatch(
      /^HTTP\/1\.1 403[\s\S]*X-Nanocell-Deny-Reason: nanocell: blocked connect to a\.test:\d+ \(not in network\.allow\)/,
    );
    expect(webA.urls).toEqual(['/from-A']);
    expect(webB.urls).toEqual(['/from-B']);
    await waitFor(eventsA, (all) => netEvents(all).length >= 2, "A's events");
    await waitFor(eventsB, (all) => netEvents(all).length >= 2, "B's events");
    const summary = (all: CellEvent[]) =>
      netEvents(all)
        .map((e) => `${e.type} ${e.host}`)
        .sort();
    expect(summary(eventsA)).toEqual(['net.allowed a.test', 'net.denied b.test']);
    expect(summary(eventsB)).toEqual(['net.allowed b.test', 'net.denied a.test']);
  });

  it("cannot reach the other cell's proxy", async () => {
    // Each proxy listens only inside its own cell's network namespace: no socket file anywhere.
    expect(fs.existsSync(`${sbA.stateRoot}/cells/${cellA.id}/proxy.sock`)).toBe(false);
    const code = [
      'import os, socket',
      'print(os.path.exists("/.nanocell/proxy.sock"))',
      // 127.0.0.1:3128 in B is B's own proxy, which answers with B's rules.
      's = socket.create_connection(("127.0.0.1", 3128))',
      `s.sendall(b"CONNECT a.test:${webA.port} HTTP/1.1\\r\\nHost: a.test\\r\\n\\r\\n")`,
      'print(s.recv(200).split(b"\\r\\n")[0].decode())',
    ].join('\n');
    const r = await cellB.run(['python3', '-c', code]);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual(['False', 'HTTP/1.1 403 Forbidden']);
    expect(webA.urls.filter((u) => u.includes('B'))).toEqual([]);
  });

  it("cannot reach the host's loopback services, directly or through its proxy", async () => {
    const code = [
      'import socket',
      `for addr in (("127.0.0.1", ${canary.port}), ("127.0.0.5", ${webA.port}), ("127.0.0.6", ${webB.port})):`,
      '    try:',
      '        socket.create_connection(addr, timeout=5); print("CONNECTED", addr)',
      '    except OSError as e:',
      '        print("errno", e.errno)',
    ].join('\n');
    const [direct, proxied] = await Promise.all([
      cellB.run(['python3', '-c', code]),
      curl(cellB, `http://127.0.0.1:${canary.port}/`),
    ]);
    expect(direct.stdout.trim().split('\n')).toEqual(['errno 111', 'errno 111', 'errno 111']);
    expect(proxied.stdout).toMatch(
      /^HTTP\/1\.1 403[\s\S]*blocked connect to 127\.0\.0\.1:\d+ \(IP address not in network\.cidrs\)/,
    );
    expect(canary.connections()).toBe(0);
  });
  it("reaches its proxy through init's bridge when the runtime gives no seccomp listener", async () => {
    // gVisor, or seccomp off: the monitor never learns the pid before init runs, so init relays
    // 127.0.0.1:3128 to a unix socket that only this cell can see.
    const sbC = makeSandbox();
    const cellC = await Cell.create({
      policy: resolvePolicy(
        parsePolicy({
          network: {
            allow: [`a.test:${webA.port}`],
            hosts: { 'a.test': '127.0.0.5' },
            cidrs: ['127.0.0.5/32'],
          },
        }),
      ),
      workspace: sbC.project,
      stateRoot: sbC.stateRoot,
      benchOff: { seccomp: true },
    });
    try {
      const [ok, ls] = await Promise.all([
        curl(cellC, `http://a.test:${webA.port}/bridged`),
        cellC.run(['ls', '-A', '/.nanocell']),
      ]);
      expect(ok.stdout).toMatch(/^HTTP\/1\.1 200/);
      expect(ls.stdout.split('\n')).toContain('proxy.sock');
      expect(webA.urls).toContain('/bridged');
    } finally {
      await cellC.destroy();
      sbC.cleanup();
    }
  });
});
