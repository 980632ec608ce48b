// `nanocell run --backend k8s` as a real CLI process against the API stand-in (a CONTRACT
// SIMULATION of the API server, not a cluster; its pods are host processes running the real
// init, test/helpers/standInPods.ts): the claim is deleted on Ctrl-C and on an error.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALWAYS_DEGRADED } from '../../../src/k8s/mapping.js';
import { makeSandbox, spawnNanocell, type Sandbox } from '../../helpers/cells.js';
import { loadCrdValidators } from '../../helpers/k8sSchemas.js';
import { startFakeKubeApi, type FakeKubeApi } from '../../helpers/fakeKubeApi.js';
import { HostPods, renderedTemplates } from '../../helpers/standInPods.js';

let fake: FakeKubeApi;
let bind = false;
const pods = new HostPods();

beforeAll(async () => {
  fake = await startFakeKubeApi({
    claimSchema: loadCrdValidators().byKind.get('SandboxClaim')!,
    controller: (claim, f) => {
      if (!bind) return;
      const name = claim.metadata.name;
      pods.start(`sb-${name}`);
      f.setStatus(name, {
        conditions: [{ type: 'Ready', status: 'True', reason: 'SandboxReady', message: '' }],
        sandbox: { name: `sb-${name}`, podIPs: ['10.213.5.3'] },
      });
    },
    templates: renderedTemplates(),
    onExec: (s) => pods.exec(s),
    onDelete: (claim) => pods.deleted(claim),
  });
});

afterAll(async () => {
  await fake?.close();
  pods.close();
});

function cli(sb: Sandbox, kubeconfig: string) {
  const p = spawnNanocell(
    [
      'run',
      '--backend',
      'k8s',
      '--kubeconfig',
      kubeconfig,
      '--workspace',
      sb.project,
      '--allow-degraded',
      ALWAYS_DEGRADED.join(','),
      '--',
      'sh',
      '-c',
      'echo started; exec sleep 60',
    ],
    { stateRoot: sb.stateRoot },
  );
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d));
  p.stderr.on('data', (d: Buffer) => (out += d));
  const done = new Promise<{ code: number | null; out: string }>((r) =>
    p.once('exit', (code) => r({ code, out })),
  );
  return { p, done, out: () => out };
}

async function until(cond: () => boolean, out: () => string): Promise<void> {
  for (let i = 0; i < 1500 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(cond(), out()).toBe(true);
}

describe('nanocell run --backend k8s (CLI, contract simulation)', () => {
  it('Ctrl-C (SIGINT) while waiting for a sandbox, and an error in the pod, delete the claim', async () => {
    const sb = makeSandbox({ 'README.md': 'hello\n' });
    const kubeconfig = `${sb.project}/../kubeconfig`;
    fs.writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 's', cluster: { server: fake.url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 'stand-in-token' } }],
        contexts: [{ name: 's', context: { cluster: 's', user: 'u', namespace: 'nanocell' } }],
        'current-context': 's',
      }),
    );
    try {
      bind = false;
      const waiting = cli(sb, kubeconfig);
      await until(() => fake.claims.size === 1 && fake.openWatches() > 0, waiting.out);
      waiting.p.kill('SIGINT');
      const early = await waiting.done;
      expect(early.code, early.out).not.toBe(0);
      expect(early.out).toMatch(/interrupted while waiting for a sandbox/);
      expect(fake.claims.size).toBe(0);
      // An error in the pod: the stand-in's pods have no /workspace (the CLI cannot point the
      // backend elsewhere), so the push fails. One line, non-zero, and the claim is deleted.
      bind = true;
      const failed = await cli(sb, kubeconfig).done;
      expect(failed.code, failed.out).not.toBe(0);
      expect(failed.out).toMatch(/^nanocell: unpacking the workspace in the pod failed.*\(fix: /m);
      expect(fake.claims.size).toBe(0);
      await pods.expectGone();
    } finally {
      sb.cleanup();
    }
  });
});
