// `nanocell doctor --backend k8s` against the API stand-in (a CONTRACT SIMULATION, not a
// cluster): the CRDs it serves are the pinned upstream files, and the canary pod's outcome is
// scripted. It checks that each check passes when the contract is met, and fails closed when
// it is not (a CRD missing, RBAC denied, direct egress reached, no canary run at all).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { runK8sDoctor } from '../../../src/k8s/doctor.js';
import { TEST_ROOT } from '../../helpers/cells.js';
import { crdDir, loadCrdValidators } from '../../helpers/k8sSchemas.js';
import { startFakeKubeApi, type FakeKubeApi } from '../../helpers/fakeKubeApi.js';

const crds = Object.fromEntries(
  fs
    .readdirSync(crdDir())
    .map((f) => YAML.parse(fs.readFileSync(path.join(crdDir(), f), 'utf8')))
    .map((c) => [c.metadata.name, c]),
);
const claimSchema = loadCrdValidators().byKind.get('SandboxClaim')!;
let fake: FakeKubeApi | undefined;
let dir = '';

async function doctor(
  over: Parameters<typeof startFakeKubeApi>[0] extends infer T ? Partial<T> : never,
  canaryImage?: string,
) {
  fake = await startFakeKubeApi({
    claimSchema,
    controller: () => undefined,
    onExec: (s) => s.exit(1),
    services: { 'nanocell-proxy': '10.96.0.42' },
    crds,
    runtimeClasses: { gvisor: 'runsc' },
    podExitCode: () => 0,
    ...over,
  });
  fs.mkdirSync(TEST_ROOT, { recursive: true });
  dir = fs.mkdtempSync(path.join(TEST_ROOT, 'kubeconfig-'));
  const kubeconfig = path.join(dir, 'config');
  fs.writeFileSync(
    kubeconfig,
    YAML.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // The stand-in speaks plain HTTP on loopback; client-node allows that only with this set.
      clusters: [{ name: 's', cluster: { server: fake.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token: 'stand-in' } }],
      contexts: [{ name: 's', context: { cluster: 's', user: 'u' } }],
      'current-context': 's',
    }),
  );
  const checks = await runK8sDoctor({
    namespace: 'nanocell',
    shape: 'default',
    runtimeClass: 'gvisor',
    kubeconfig,
    canaryImage,
    canaryTimeoutMs: 6000,
  });
  return Object.fromEntries(checks.map((c) => [c.name, c]));
}

afterEach(async () => {
  await fake?.close();
  fake = undefined;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('doctor --backend k8s (API stand-in, contract simulation)', () => {
  it('passes every check when the cluster meets the contract, and removes its canary', async () => {
    const c = await doctor({}, 'registry.example/nanocell:test');
    for (const name of [
      'kubeconfig',
      'agent-sandbox CRDs',
      'RuntimeClass gvisor',
      'RBAC',
      'proxy tier',
      'NetworkPolicy enforced',
    ]) {
      expect(c[name]?.status, `${name}: ${c[name]?.detail}`).toBe('ok');
    }
    expect(c['agent-sandbox CRDs']!.detail).toContain('valid against them');
    expect(fake!.pods.size).toBe(0);
  });

  it('fails closed: direct egress reached, RBAC denied, a CRD missing, no RuntimeClass', async () => {
    const { [Object.keys(crds)[0]!]: _gone, ...rest } = crds;
    const c = await doctor(
      {
        crds: rest,
        runtimeClasses: {},
        access: { 'create pods/exec': false },
        podExitCode: () => 1,
      },
      'registry.example/nanocell:test',
    );
    expect(c['NetworkPolicy enforced']!.status).toBe('fail');
    expect(c['NetworkPolicy enforced']!.detail).toContain('not enforced');
    expect(c.RBAC!.detail).toContain('create pods/exec');
    expect(c['agent-sandbox CRDs']!.status).toBe('fail');
    expect(c['RuntimeClass gvisor']!.status).toBe('fail');
  });

  it('a canary that cannot run is a failure, not a pass', async () => {
    expect((await doctor({}))['NetworkPolicy enforced']!.status).toBe('fail');
    expect(
      (await doctor({ podExitCode: () => undefined }, 'img'))['NetworkPolicy enforced']!.detail,
    ).toContain('unknown');
  });

  it('the canary script, run for real in a network namespace: ok only when the tier is reachable and nothing else', async () => {
    const ns = `nc-canary-${process.pid}`;
    const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { stdio: 'pipe' });
    const servers: ChildProcess[] = [];
    const serve = (ip: string, port: number) => {
      const p = spawn('ip', [
        'netns',
        'exec',
        ns,
        'node',
        '-e',
        `require('net').createServer(s=>s.end()).listen(${port},'${ip}',()=>console.log('up'))`,
      ]);
      servers.push(p);
      return new Promise((r) => p.stdout.once('data', r));
    };
    // The pod's own command, as the kubelet would run it, inside the namespace.
    const runPod = (pod: { spec: { containers: { command: string[] }[] } }) =>
      new Promise<number | undefined>((r) => {
        const p = spawn('ip', ['netns', 'exec', ns, ...pod.spec.containers[0]!.command], {
          stdio: 'ignore',
        });
        p.once('exit', (code) => r(code ?? undefined));
      });
    sh(`ip netns add ${ns} && ip -n ${ns} link set lo up`);
    try {
      // Nothing reachable at all: not a pass (a pod without a network proves nothing).
      let c = await doctor({ podExitCode: runPod as never }, 'img');
      expect(c['NetworkPolicy enforced']!.detail).toMatch(/reached nothing.*unknown/);
      // The tier reachable, the public addresses not: NetworkPolicy enforced.
      sh(`ip -n ${ns} addr add 10.96.0.42/32 dev lo`);
      await serve('10.96.0.42', 3128);
      c = await doctor({ podExitCode: runPod as never }, 'img');
      expect(c['NetworkPolicy enforced']!.status, c['NetworkPolicy enforced']!.detail).toBe('ok');
      // A public address reachable too: not enforced.
      sh(`ip -n ${ns} addr add 1.1.1.1/32 dev lo`);
      await serve('1.1.1.1', 443);
      c = await doctor({ podExitCode: runPod as never }, 'img');
      expect(c['NetworkPolicy enforced']!.detail).toContain('not enforced');
    } finally {
      for (const p of servers) p.kill('SIGKILL');
      spawnSync('ip', ['netns', 'del', ns]);
    }
  }, 120_000);
});
