// The warm pool on real cells: a claim attaches the workspace, env, network rules and secrets
// to a cell started before the task was known, and no task sees anything of the one before it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import { CellPool } from '../../../src/cell/pool.js';
import type { InitClient } from '../../../src/cell/initClient.js';
import type { CellEvent } from '../../../src/cell/types.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { loadChangeSet } from '../../../src/workspace/manifest.js';
import type { PolicyFile } from '../../../src/policy/schema.js';
import { helperParents, leftovers, makeSandbox, type Sandbox } from '../../helpers/cells.js';
import { startWebServer, type WebServer } from '../net/cellServers.js';
import { Harness } from '../net/harness.js';

const h = new Harness();
let sb: Sandbox;
let webA: WebServer;
let webB: WebServer;
let pool: CellPool | undefined;
const cells: Cell[] = [];

/** This process's nanocell-attach helpers (one waits in each warm cell). */
function attachHelpers(): number[] {
  const parents = helperParents();
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return comm === 'nanocell-attach' && parents.has(ppid);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const hosts = { 'a.test': '127.0.0.7', 'b.test': '127.0.0.8', 's.test': '127.0.0.9' };
const cidrs = ['127.0.0.7/32', '127.0.0.8/32', '127.0.0.9/32'];
const SECRET = `sk-pool-${'Qx7'.repeat(8)}${Date.now()}`;
/** What the TLS stand-in at s.test saw in x-api-key, per request. */
const keysSeen: string[] = [];
let tlsPort = 0;
const policyWith = (extra: PolicyFile = {}, allow?: string) =>
  resolvePolicy(
    parsePolicy({
      workspace: { protected: ['locked'] },
      network: { allow: [allow ?? `a.test:${webA.port}`], hosts, cidrs },
      ...extra,
    }),
  );

beforeAll(async () => {
  [webA, webB] = await Promise.all([
    startWebServer(h, '127.0.0.7', h.dir),
    startWebServer(h, '127.0.0.8', h.dir),
  ]);
  const key = path.join(h.dir, 's.key');
  const crt = path.join(h.dir, 's.crt');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
      .concat(['-keyout', key, '-out', crt, '-days', '1', '-subj', '/CN=s.test'])
      .concat(['-addext', 'subjectAltName=DNS:s.test']),
    { stdio: 'ignore' },
  );
  // The supervisor (this process) verifies the upstream; the cell trusts only its own CA.
  process.env.NODE_EXTRA_CA_CERTS = crt;
  process.env.POOL_TEST_SECRET = SECRET;
  tlsPort = await h.listen(
    https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(crt) }, (req, res) => {
      keysSeen.push(String(req.headers['x-api-key'] ?? ''));
      res.end('ok\n');
    }),
    '127.0.0.9',
  );
  sb = makeSandbox({
    'notes.txt': 'one\n',
    '.env': 'TOKEN=hunter2\n',
    'locked/keep.txt': 'do not touch\n',
  });
  pool = CellPool.open({
    policy: policyWith(),
    workspace: sb.project,
    size: 1,
    stateRoot: sb.stateRoot,
  });
  await pool.whenFull();
});

afterAll(async () => {
  await pool?.close();
  await Promise.all(cells.map((c) => c.destroy().catch(() => undefined)));
  sb?.cleanup();
  await h.cleanup();
});

const claim = async (...a: Parameters<CellPool['claim']>) => {
  const c = await pool!.claim(...a);
  cells.push(c);
  return c;
};
const curl = (c: Cell, url: string) =>
  c.run(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', url]);

describe('warm pool', () => {
  it('attaches the scoped workspace to a warm cell and records the task', async () => {
    expect(pool!.stats()).toMatchObject({ ready: 1, failedStarts: 0 });
    const events: CellEvent[] = [];
    const cell = await claim({ session: 'pooled', onEvent: (e) => events.push(e) });
    expect(cell.session).toBe('pooled');
    const r = await cell.run([
      'sh',
      '-c',
      'pwd; cat notes.txt; test -e .env || echo no-env; echo new > made.txt; ' +
        'echo x > locked/keep.txt 2>/dev/null || echo locked-ro',
    ]);
    expect(r.stdout).toBe(`${sb.project}\none\nno-env\nlocked-ro\n`);
    expect((await cell.files.read('made.txt')).content.toString()).toBe('new\n');
    await expect(cell.files.read('.env')).rejects.toThrow();
    // Copy on write: nothing reaches the project before apply.
    expect(fs.existsSync(path.join(sb.project, 'made.txt'))).toBe(false);
    const summary = await cell.destroy();
    expect(summary.taskId).toBe(cell.taskId);
    const changes = summary.changeSet as { dir: string; counts: { add: number } };
    expect(changes.counts.add).toBe(1);
    expect(loadChangeSet(changes.dir).manifest.entries.map((e) => e.path)).toEqual(['made.txt']);
    // The warm start's own events reach the task's trail, then its claim's.
    expect(events.map((e) => e.type)).toContain('task.started');
  });

  it('gives the next task nothing of the one before it', async () => {
    await pool!.whenFull();
    const first = await claim({ policy: policyWith({ env: { FIRST: 'yes' } }) });
    const w = await first.run([
      'sh',
      '-c',
      'echo a > ws.txt; echo a > /tmp/t.txt; echo a > "$HOME/h.txt"; ' +
        'setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo "$FIRST"',
    ]);
    expect(w.stdout).toBe('yes\n');
    expect(await curl(first, `http://a.test:${webA.port}/first`)).toMatchObject({ stdout: '200' });
    await first.destroy();

    await pool!.whenFull();
    const second = await claim({ policy: policyWith({}, `b.test:${webB.port}`) });
    expect(second.id).not.toBe(first.id);
    const r = await second.run([
      'sh',
      '-c',
      'ls -A; ls -A /tmp; ls -A "$HOME"; ps -e -o comm= | grep -c sleep; echo "env:${FIRST:-none}"',
    ]);
    // Files, /tmp, HOME, processes and env: only what the project and the claim bring.
    expect(r.stdout).toBe('locked\nnotes.txt\n0\nenv:none\n');
    // Network: the first claim's rule is gone, the second's is in force.
    expect(await curl(second, `http://a.test:${webA.port}/second`)).toMatchObject({
      stdout: '403',
    });
    expect(await curl(second, `http://b.test:${webB.port}/second`)).toMatchObject({
      stdout: '200',
    });
    expect(webA.urls).toEqual(['/first']);
    await second.destroy();
  });

  it("brokers the claim's own secrets, which the pool's policy did not have, and no later claim's", async () => {
    await pool!.whenFull();
    const secrets = [
      {
        name: 'S_KEY',
        from: { env: 'POOL_TEST_SECRET' },
        hosts: ['s.test'],
        header: 'x-api-key',
      },
    ];
    const url = `https://s.test:${tlsPort}/v1`;
    const first = await claim({ policy: policyWith({ secrets }, `s.test:${tlsPort}`) });
    const r = await first.run([
      'sh',
      '-c',
      `echo "$S_KEY"; curl -sS --max-time 10 ${url} -H "x-api-key: $S_KEY"`,
    ]);
    const placeholder = r.stdout.split('\n')[0]!;
    expect(placeholder).toHaveLength(SECRET.length);
    expect(placeholder).not.toBe(SECRET);
    expect(r.stdout.split('\n')[1]).toBe('ok');
    expect(keysSeen).toEqual([SECRET]);
    await first.destroy();

    // The next claim brings none: no placeholder, nothing put in for an old one.
    await pool!.whenFull();
    const second = await claim({ policy: policyWith({}, `s.test:${tlsPort}`) });
    const r2 = await second.run([
      'sh',
      '-c',
      `echo "key:\${S_KEY:-none}"; curl -sS --max-time 10 ${url} -H "x-api-key: ${placeholder}" 2>/dev/null; echo "curl=$?"`,
    ]);
    expect(r2.stdout).toMatch(/^key:none\n(curl=\d+\n)$/);
    expect(r2.stdout).not.toBe('key:none\ncurl=0\n');
    expect(keysSeen).toEqual([SECRET]);
    await second.destroy();

    // A secret bound to a host the claim does not allow is refused before the cell is used.
    await pool!.whenFull();
    await expect(pool!.claim({ policy: policyWith({ secrets }) })).rejects.toThrow(
      /secret S_KEY is bound to s\.test, which network\.allow does not allow/,
    );
    expect(pool!.stats()).toMatchObject({ ready: 1 });
  });

  it('runs nothing in a warm cell before its claim: init refuses commands until Landlock is on', async () => {
    const warm = await Cell.warm({
      policy: policyWith(),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
    });
    cells.push(warm);
    expect(() => warm.exec(['true'])).toThrow(/this cell is warm: it has no task yet/);
    // Below the library's check, init itself fails closed.
    const client = (warm as unknown as { proc: { client: InitClient } }).proc.client;
    const h = client.exec({ argv: ['/bin/true'], env: [], cwd: '/' });
    await expect(h.result).resolves.toMatchObject({ kind: 'spawn-failed', errno: 1 });
    await warm.destroy();
  });

  it('refuses a claim whose fixed policy parts differ, and keeps the warm cell', async () => {
    await pool!.whenFull();
    await expect(
      pool!.claim({ policy: policyWith({ limits: { memory: 300 * 1024 * 1024 } }) }),
    ).rejects.toThrow(
      /differs from pool "default" in limits\.memory, which a warm cell fixes at start/,
    );
    await expect(pool!.claim({ workspace: h.dir })).rejects.toThrow(/serves the project/);
    expect(pool!.stats()).toMatchObject({ ready: 1 });
  });

  it('sized to zero, claims start their cells on demand; closing leaves nothing behind', async () => {
    const empty = CellPool.open({
      policy: policyWith(),
      workspace: sb.project,
      size: 0,
      stateRoot: sb.stateRoot,
    });
    const cell = await empty.claim();
    expect((await cell.run(['cat', 'notes.txt'])).stdout).toBe('one\n');
    await cell.destroy();
    await empty.close();
    // A drained pool refuses what a full one would: its cells have no proxy, so no egress.
    const offline = CellPool.open({
      policy: resolvePolicy(parsePolicy({ workspace: { protected: ['locked'] } })),
      workspace: sb.project,
      size: 0,
      stateRoot: sb.stateRoot,
    });
    await expect(offline.claim({ policy: policyWith() })).rejects.toThrow(
      /starts its cells without an egress proxy/,
    );
    await offline.close();
    expect(() => CellPool.open({ policy: policyWith(), workspace: sb.project, size: -1 })).toThrow(
      /size -1 is not a whole number/,
    );
    await pool!.whenFull();
    expect(attachHelpers().length).toBeGreaterThan(0);
    await pool!.close();
    pool = undefined;
    await Promise.all(cells.map((c) => c.destroy()));
    // A warm cell destroyed unclaimed ends its waiting attach helper too.
    expect(attachHelpers()).toEqual([]);
    expect(leftovers(sb.stateRoot)).toMatchObject({
      cells: [],
      runtime: [],
      mounts: [],
      slots: [],
    });
  });
});
