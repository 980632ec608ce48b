// `run --backend k8s` against a CONTRACT SIMULATION of the Kubernetes API (test/helpers/
// fakeKubeApi.ts: a loopback stand-in implementing only the calls the backend makes, with a
// scripted controller), not a cluster. What is real: @kubernetes/client-node, the watch and
// exec wire formats (JSON lines; WebSocket v5.channel.k8s.io), nanocell's init binary as the
// pod's pid 1 (--control-listen) and as the exec'd command (--attach), on this host outside any
// pod with Landlock off (test/helpers/standInPods.ts), tar in and out through init, and the
// change-set collector. podInCell.test.ts runs the pod side in a real local cell instead.
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { K8sApi } from '../../../src/k8s/client.js';
import { Cell } from '../../../src/cell/cell.js';
import { k8sBackend } from '../../../src/k8s/sdk.js';
import { ALWAYS_DEGRADED } from '../../../src/k8s/mapping.js';
import { runK8sTask, type K8sTaskOptions } from '../../../src/k8s/run.js';
import { resolvePolicy } from '../../../src/policy/load.js';
import { TenantRegistry } from '../../../src/net/tenants.js';
import { startControlServer } from '../../../src/net/tenantControl.js';
import { renderDiff } from '../../../src/workspace/diff.js';
import { applyChangeSet } from '../../../src/workspace/apply.js';
import { NanocellError } from '../../../src/util/errors.js';
import { makeSandbox, type Sandbox } from '../../helpers/cells.js';
import { HostPods, renderedTemplates } from '../../helpers/standInPods.js';
import { loadCrdValidators } from '../../helpers/k8sSchemas.js';
import { startFakeKubeApi, type FakeKubeApi } from '../../helpers/fakeKubeApi.js';

type Script = 'ready' | 'compact-then-ready' | 'close-then-ready' | 'fail';
let script: Script = 'ready';
let fake: FakeKubeApi;
let api: K8sApi;
let sb: Sandbox;
const pods = new HostPods();

function controller(claim: { metadata: { name: string } }, f: FakeKubeApi) {
  const name = claim.metadata.name;
  const ready = () => {
    pods.start(`sb-${name}`);
    f.setStatus(name, {
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'SandboxReady',
          message: '',
          lastTransitionTime: new Date().toISOString(),
        },
      ],
      sandbox: { name: `sb-${name}`, podIPs: ['10.213.5.2'] },
    });
  };
  // Acts once the client is watching, so a close or a compaction hits a live watch.
  const act = (tries = 0): unknown => {
    if (f.openWatches() === 0 && tries < 200) return setTimeout(() => act(tries + 1), 10);
    if (script === 'fail') {
      return f.setStatus(name, {
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: 'WarmPoolNotFound',
            message: 'no pool',
            lastTransitionTime: new Date().toISOString(),
          },
        ],
      });
    }
    // A compaction alone leaves open watches alone; the resume from the old version gets 410.
    if (script === 'compact-then-ready') f.compact();
    if (script !== 'ready') f.closeWatches();
    setTimeout(ready, script === 'ready' ? 0 : 100);
  };
  act();
}

beforeAll(async () => {
  const crds = loadCrdValidators();
  fake = await startFakeKubeApi({
    claimSchema: crds.byKind.get('SandboxClaim')!,
    controller,
    templates: renderedTemplates(),
    onExec: (s) => pods.exec(s),
    onDelete: (claim) => pods.deleted(claim),
    services: { 'nanocell-proxy': '10.96.0.42' },
  });
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'stand-in', server: fake.url, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'stand-in-token' }],
    contexts: [{ name: 'stand-in', cluster: 'stand-in', user: 'u', namespace: 'nanocell' }],
    currentContext: 'stand-in',
  });
  api = new K8sApi(kc, k8s);
});

afterAll(async () => {
  await fake?.close();
  pods.close();
});

function task(over: Partial<K8sTaskOptions> & { policy?: ReturnType<typeof resolvePolicy> } = {}) {
  sb = makeSandbox({ 'README.md': 'hello\n', 'src/a.txt': 'a\n', '.env': 'SECRET=1\n' });
  const podWs = `${path.dirname(sb.project)}/pod-workspace`;
  fs.mkdirSync(podWs);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (out += d));
  const run = runK8sTask({
    api,
    namespace: 'nanocell',
    shape: 'default',
    policy: resolvePolicy({}),
    workspace: sb.project,
    stateRoot: sb.stateRoot,
    workspacePath: podWs,
    command: ['true'],
    stdout,
    stderr,
    claimTimeoutMs: 10_000,
    allowDegraded: [...ALWAYS_DEGRADED],
    ...over,
  });
  return { run, out: () => out, podWs };
}

describe('k8s backend against the API stand-in (contract simulation, not a cluster)', () => {
  it('claims, pushes the scoped workspace, runs through init, collects the same change set, deletes the claim', async () => {
    const t = task({
      command: [
        'sh',
        '-c',
        'cat README.md; test -e .env || echo no-env; echo changed > src/a.txt; rm README.md; echo new > b.txt',
      ],
    });
    try {
      const r = await t.run;
      expect(t.out()).toContain('hello');
      expect(t.out()).toContain('no-env');
      expect(r.exitCode).toBe(0);
      expect(r.changes?.status).toBe('ok');
      const dir = `${sb.stateRoot}/changes/${r.taskId}`;
      const diff = renderDiff(dir, sb.project);
      expect(diff).toContain('+changed');
      expect(diff).toContain('b.txt');
      expect(diff).toContain('README.md');
      applyChangeSet(dir, sb.project);
      expect(fs.readFileSync(`${sb.project}/src/a.txt`, 'utf8')).toBe('changed\n');
      expect(fs.existsSync(`${sb.project}/README.md`)).toBe(false);
      expect(fs.readFileSync(`${sb.project}/.env`, 'utf8')).toBe('SECRET=1\n');
      expect(fake.claims.size).toBe(0);
      expect(fake.log.filter((l) => l.startsWith('DELETE'))).toHaveLength(1);
      expect(
        fake.log.some((l) => l.startsWith('UPGRADE') && l.includes(`/pods/sb-${r.claim}/exec`)),
      ).toBe(true);
      await pods.expectGone();
    } finally {
      sb.cleanup();
    }
  });

  for (const s of ['compact-then-ready', 'close-then-ready'] as const) {
    it(`the watch resumes after ${s === 'compact-then-ready' ? '410 Gone (re-read, re-watch)' : 'a server-side close'}`, async () => {
      script = s;
      fake.log.length = 0;
      const t = task();
      try {
        const r = await t.run;
        expect(r.exitCode).toBe(0);
        expect(fake.log.filter((l) => l.endsWith('?watch')).length).toBeGreaterThanOrEqual(2);
        if (s === 'compact-then-ready')
          expect(fake.log.some((l) => /^GET .*sandboxclaims\/nc-/.test(l))).toBe(true);
        expect(fake.claims.size).toBe(0);
      } finally {
        script = 'ready';
        sb.cleanup();
      }
    });
  }

  it('a shape rendered from another policy, or a degradation not accepted, is refused before any claim', async () => {
    for (const [over, re] of [
      [
        { policy: resolvePolicy({ limits: { memory: 2 * 1024 ** 3 } }) },
        /rendered from another policy.*re-render it/,
      ],
      [
        { policy: resolvePolicy({ syscalls: { allow: ['personality'] } }) },
        /rendered from another policy/,
      ],
      [{ allowDegraded: ['pids'] }, /cannot enforce rlimits.*--allow-degraded rlimits/],
    ] as const) {
      fake.log.length = 0;
      const t = task(over);
      try {
        const e = await t.run.then(
          () => undefined,
          (x: unknown) => x,
        );
        expect((e as NanocellError).oneLine()).toMatch(re);
        expect(fake.log.filter((l) => l.startsWith('POST'))).toEqual([]);
      } finally {
        sb.cleanup();
      }
    }
    // What the supervisor applies per claim (timeout, output, network, env) is not the shape's.
    const t = task({ policy: resolvePolicy({ limits: { timeout: 60_000 }, env: { A: 'b' } }) });
    try {
      expect((await t.run).exitCode).toBe(0);
    } finally {
      sb.cleanup();
    }
  });

  it('the SDK: Cell.create({ backend: k8sBackend() }) runs commands in one pod, destroy() collects and deletes the claim', async () => {
    sb = makeSandbox({ 'README.md': 'hello\n' });
    const podWs = `${path.dirname(sb.project)}/pod-workspace`;
    fs.mkdirSync(podWs);
    try {
      const backend = k8sBackend({
        api,
        workspacePath: podWs,
        allowDegraded: [...ALWAYS_DEGRADED],
      });
      const cell = await Cell.create({
        policy: resolvePolicy({ limits: { output: 64 } }),
        workspace: sb.project,
        stateRoot: sb.stateRoot,
        backend,
      });
      expect(fake.claims.has(cell.claim)).toBe(true);
      const a = await cell.run(['sh', '-c', 'echo one > one.txt; cat README.md']);
      expect([a.exitCode, a.stdout]).toEqual([0, 'hello\n']);
      const b = await cell.run(['sh', '-c', 'cat one.txt; cat; echo "$X"'], {
        input: 'in\n',
        env: { X: 'y' },
      });
      expect(b.stdout).toBe('one\nin\ny\n');
      const big = await cell.run(['sh', '-c', 'head -c 1000 /dev/zero']);
      expect(big.outputTruncated).toBe(true);
      const { taskId, changes } = await cell.destroy();
      expect(changes.status).toBe('ok');
      expect(renderDiff(`${sb.stateRoot}/changes/${taskId}`, sb.project)).toContain('one.txt');
      expect(fake.claims.size).toBe(0);
      await expect(cell.run(['true'])).rejects.toThrow(/ended/);
      // A refused shape: nothing is claimed.
      await expect(
        Cell.create({
          policy: resolvePolicy({ limits: { memory: 3 * 1024 ** 3 } }),
          workspace: sb.project,
          stateRoot: sb.stateRoot,
          backend,
        }),
      ).rejects.toThrow(/rendered from another policy/);
      expect(fake.claims.size).toBe(0);
      await pods.expectGone();
    } finally {
      sb.cleanup();
    }
  });

  it('a claim the controller fails is an error naming the reason, and is deleted', async () => {
    script = 'fail';
    const t = task();
    try {
      await expect(t.run).rejects.toThrow(/WarmPoolNotFound/);
      expect(fake.claims.size).toBe(0);
    } finally {
      script = 'ready';
      sb.cleanup();
    }
  });

  it('404 (no CRD), 409 and 422 are one-line errors with a fix; nothing is left behind', async () => {
    for (const [setup, re] of [
      [() => (fake.crdInstalled = false), /404.*install agent-sandbox/],
      [() => (fake.failNextCreate = { code: 409, reason: 'AlreadyExists' }), /409.*retry/],
      [() => (fake.failNextCreate = { code: 422, reason: 'Invalid' }), /422.*v1beta1/],
    ] as const) {
      setup();
      const t = task();
      try {
        const e = await t.run.then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(e).toBeInstanceOf(NanocellError);
        expect((e as NanocellError).oneLine()).toMatch(re);
        expect(fake.claims.size).toBe(0);
      } finally {
        fake.crdInstalled = true;
        sb.cleanup();
      }
    }
  });

  it('timeout and abort (Ctrl-C) kill the command on the client side and delete the claim', async () => {
    const timed = task({
      policy: resolvePolicy({ limits: { timeout: 500 } }),
      command: ['sleep', '30'],
    });
    try {
      const r = await timed.run;
      expect([r.exitCode, r.endReason]).toEqual([124, 'timeout']);
      expect(fake.claims.size).toBe(0);
    } finally {
      sb.cleanup();
    }
    const ac = new AbortController();
    const aborted = task({ command: ['sleep', '30'], abort: ac.signal });
    setTimeout(() => ac.abort(), 400);
    try {
      const r = await aborted.run;
      expect([r.exitCode, r.endReason]).toEqual([137, 'killed']);
      expect(fake.claims.size).toBe(0);
    } finally {
      sb.cleanup();
    }
  });

  it('an abort before the command starts (set-up, push) runs nothing and deletes the claim', async () => {
    const ac = new AbortController();
    const t = task({
      command: ['sh', '-c', 'echo ran'],
      abort: ac.signal,
      onEvent: (e) => e.type === 'claim.ready' && ac.abort(),
    });
    try {
      await expect(t.run).rejects.toThrow(/interrupted while/);
      expect(t.out()).not.toContain('ran');
      expect(fake.claims.size).toBe(0);
      await pods.expectGone();
    } finally {
      sb.cleanup();
    }
  });

  it('output past the cap is dropped, and the command is never blocked', async () => {
    const t = task({
      policy: resolvePolicy({ limits: { output: 1000 } }),
      command: ['sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x; echo done >&2'],
    });
    try {
      const r = await t.run;
      expect(r.exitCode).toBe(0);
      expect(r.outputTruncated).toBe(true);
      expect(t.out()).toContain('output truncated after 1000 bytes');
    } finally {
      sb.cleanup();
    }
  });

  it('egress: the claim is registered with the proxy tier and removed after', async () => {
    const dir = fs.mkdtempSync('/var/tmp/nanocell-tier-');
    const registry = new TenantRegistry(dir);
    const control = await startControlServer(registry, {
      listen: `${dir}/control.sock`,
      token: 't'.repeat(40),
    });
    const seen: string[] = [];
    const t = task({
      policy: resolvePolicy({ network: { allow: ['registry.npmjs.org'] } }),
      tier: { control: `${dir}/control.sock`, token: 't'.repeat(40) },
      command: ['sh', '-c', 'echo "$HTTPS_PROXY"'],
      onEvent: (e) => {
        if (e.type === 'claim.ready') seen.push(`tenants=${registry.size()}`);
      },
    });
    try {
      const r = await t.run;
      expect(r.exitCode).toBe(0);
      expect(t.out()).toMatch(
        new RegExp(`^http://${r.claim}:[A-Za-z0-9_-]{43}@10\\.96\\.0\\.42:3128$`, 'm'),
      );
      expect(registry.size()).toBe(0);
    } finally {
      await control.close();
      await registry.close();
      fs.rmSync(dir, { recursive: true, force: true });
      sb.cleanup();
    }
  });
});
