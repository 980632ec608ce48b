// Cell.setNetwork on a real cell: a destination refused by the policy is reached once the
// list allows it and refused again once it is removed; a bad entry changes nothing; a cell
// started without a proxy refuses with the fix; every replacement is a net.rules audit event.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditStore } from '../../../src/audit/store.js';
import { Cell } from '../../../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

let server: http.Server;
let port: number;
let sb: Sandbox;
let sbNone: Sandbox;
let cell: Cell | undefined;
let none: Cell | undefined;

beforeAll(async () => {
  server = http.createServer((req, res) => res.end(`hello ${req.headers.host}\n`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.2', r));
  port = (server.address() as AddressInfo).port;
  sb = makeSandbox();
  sbNone = makeSandbox();
  const network = {
    allow: [`web.test:${port}`],
    cidrs: [`127.0.0.2/32:${port}`],
    hosts: { 'web.test': '127.0.0.2', 'other.test': '127.0.0.2' },
  };
  [cell, none] = await Promise.all([
    Cell.create({
      policy: resolvePolicy(parsePolicy({ network })),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
    }),
    Cell.create({
      policy: resolvePolicy(parsePolicy({})),
      workspace: sbNone.project,
      stateRoot: sbNone.stateRoot,
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([cell, none].map((c) => c?.destroy().catch(() => undefined)));
  sb?.cleanup();
  sbNone?.cleanup();
  await new Promise((r) => server?.close(r));
});

/** The HTTP status curl gets for `host` through the cell's proxy (403: refused by it). */
const status = async (host: string) => {
  const r = await cell!.run([
    'curl',
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    `http://${host}:${port}/`,
  ]);
  return r.stdout;
};

/** The same without the proxy variables: through transparent capture and the DNS stub. */
const direct = async (host: string) => {
  const r = await cell!.run([
    'curl',
    '-sS',
    '--noproxy',
    '*',
    '--max-time',
    '10',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    `http://${host}:${port}/`,
  ]);
  return r.exitCode === 0 ? r.stdout : `failed ${r.exitCode}`;
};

describe('setNetwork', () => {
  it('allows a refused destination, then refuses it again once removed; records each change', async () => {
    expect(await status('web.test')).toBe('200');
    expect(await status('other.test')).toBe('403');
    expect(await direct('other.test')).not.toBe('200');

    cell!.setNetwork([`web.test:${port}`, `other.test:${port}`]);
    expect(cell!.network).toEqual([`web.test:${port}`, `other.test:${port}`]);
    expect(await status('other.test')).toBe('200');
    // Capture and the DNS stub decide with the new list too, not the one they started with.
    expect(await direct('other.test')).toBe('200');

    cell!.setNetwork([`web.test:${port}`]);
    expect(await status('other.test')).toBe('403');
    expect(await direct('other.test')).not.toBe('200');
    expect(await direct('web.test')).toBe('200');
    expect(await status('web.test')).toBe('200');

    // A bad entry is the policy's one-line error, and the list in force stays.
    expect(() => cell!.setNetwork([`web.test:${port}`, 'bad host:99999'])).toThrow(
      /network\.allow/,
    );
    expect(() => cell!.setNetwork([42 as unknown as string])).toThrow(/invalid policy: setNetwork/);
    expect(cell!.network).toEqual([`web.test:${port}`]);
    expect(await status('web.test')).toBe('200');

    cell!.setNetwork([]);
    expect(await status('web.test')).toBe('403');

    const taskId = cell!.taskId;
    await cell!.destroy();
    cell = undefined;
    const store = AuditStore.open(path.join(sb.stateRoot, 'nanocell.db'));
    try {
      const changes = store
        .events(taskId)
        .filter((e) => e.type === 'net.rules')
        .map((e) => (e.type === 'net.rules' ? [e.before, e.after] : []));
      expect(changes).toEqual([
        [[`web.test:${port}`], [`web.test:${port}`, `other.test:${port}`]],
        [[`web.test:${port}`, `other.test:${port}`], [`web.test:${port}`]],
        [[`web.test:${port}`], []],
      ]);
      expect(store.verifyTask(taskId).ok).toBe(true);
    } finally {
      store.close();
    }
    const logs = nanocell(['logs', taskId], { stateRoot: sb.stateRoot });
    expect(logs.stdout).toContain(`network.allow replaced: web.test:${port} -> nothing`);
  });

  it('is refused, with the fix, on a cell started without a proxy', async () => {
    expect(() => none!.setNetwork([`web.test:${port}`])).toThrow(/has no egress proxy/);
    const r = await none!.run(['sh', '-c', 'env | grep -ic proxy || true']);
    expect(r.stdout.trim()).toBe('0');
  });
});
