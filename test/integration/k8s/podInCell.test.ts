// The in-pod part of the Kubernetes backend run FOR REAL in a local cell. The "pod" is a local
// nanocell cell (real runc, seccomp, namespaces) whose workspace holds what the cell image would:
// nanocell's static init, an empty workspace dir (the emptyDir) and a run dir. In it:
//   - the pod's pid 1 is exactly the command `k8s render` puts in the SandboxTemplate (init with
//     --control-listen and the rendered Landlock rules), with the image paths mapped to that dir;
//   - each pods/exec of the API stand-in (a CONTRACT SIMULATION of the API server, not a
//     cluster) runs `init --attach` in the cell, its stdio carried over WebSocket v5;
//   - runK8sTask pushes the scoped workspace as tar, runs the task through the pod's init,
//     pulls the workspace back and collects the change set, which diff/apply take unchanged.
// What it cannot show: the kubelet, the CRI, the node's seccomp profile and a real controller.
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import type { CellExec } from '../../../src/cell/types.js';
import { K8sApi } from '../../../src/k8s/client.js';
import { POD } from '../../../src/k8s/constants.js';
import { ALWAYS_DEGRADED } from '../../../src/k8s/mapping.js';
import { renderShape } from '../../../src/k8s/render.js';
import { runK8sTask } from '../../../src/k8s/run.js';
import { resolvePolicy } from '../../../src/policy/load.js';
import { renderDiff } from '../../../src/workspace/diff.js';
import { applyChangeSet } from '../../../src/workspace/apply.js';
import { makeSandbox, REPO, type Sandbox } from '../../helpers/cells.js';
import { loadCrdValidators } from '../../helpers/k8sSchemas.js';
import { startFakeKubeApi, type FakeKubeApi } from '../../helpers/fakeKubeApi.js';
import { renderedTemplates } from '../../helpers/standInPods.js';

const INIT = path.join(REPO, 'native', 'build', 'nanocell-init');
const policy = resolvePolicy({});
let fake: FakeKubeApi;
let api: K8sApi;
let pod: { sb: Sandbox; cell: Cell; pid1: CellExec; log: () => string } | undefined;

/** The image's paths, as they sit in the local cell standing in for the pod. */
function toLocal(podDir: string, p: string): string {
  const map: Record<string, string> = {
    [POD.init]: `${podDir}/init`,
    [POD.controlSocket]: `${podDir}/run/control.sock`,
    [POD.workspace]: `${podDir}/workspace`,
    [path.dirname(POD.controlSocket)]: `${podDir}/run`,
  };
  return map[p] ?? p;
}

/** Starts the "pod": a local cell running the rendered container command as its pid 1. */
async function startPod(): Promise<void> {
  const sb = makeSandbox({});
  const dir = sb.project;
  fs.copyFileSync(INIT, `${dir}/init`);
  fs.chmodSync(`${dir}/init`, 0o755);
  fs.mkdirSync(`${dir}/workspace`);
  fs.mkdirSync(`${dir}/run`);
  const shape = renderShape({
    policy,
    shape: 'default',
    namespace: 'nanocell',
    image: 'unused',
    replicas: 1,
    arch: process.arch === 'arm64' ? 'aarch64' : 'x86_64',
    allowDegraded: [...ALWAYS_DEGRADED],
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const container = (shape.objects[0] as any).spec.podTemplate.spec.containers[0];
  const command = (container.command as string[]).map((a) => toLocal(dir, a));
  expect(command).toContain('required'); // Landlock, as rendered
  // The pod's own output limit does not apply to the session itself (tar streams): lift it.
  const local = resolvePolicy({ limits: { output: 1024 ** 3, timeout: 10 * 60_000 } });
  const cell = await Cell.create({ policy: local, workspace: dir, stateRoot: sb.stateRoot });
  const pid1 = cell.exec(command);
  let log = '';
  pid1.stderr.on('data', (d: Buffer) => (log += d));
  pid1.stdout.resume();
  for (let i = 0; i < 200; i++) {
    if ((await cell.run(['test', '-S', `${dir}/run/control.sock`])).exitCode === 0) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  pod = { sb, cell, pid1, log: () => log };
}

async function stopPod(): Promise<void> {
  if (!pod) return;
  const p = pod;
  pod = undefined;
  try {
    await p.cell.destroy();
  } finally {
    p.sb.cleanup();
  }
}

beforeAll(async () => {
  fake = await startFakeKubeApi({
    claimSchema: loadCrdValidators().byKind.get('SandboxClaim')!,
    controller: (claim, f) =>
      setTimeout(
        () =>
          f.setStatus(claim.metadata.name, {
            conditions: [{ type: 'Ready', status: 'True', reason: 'SandboxReady', message: '' }],
            sandbox: { name: `sb-${claim.metadata.name}`, podIPs: ['10.213.5.9'] },
          }),
        20,
      ),
    templates: renderedTemplates(),
    onExec: (s) => {
      if (!pod) return s.exit(1);
      const x = pod.cell.exec(s.command.map((a) => toLocal(pod!.sb.project, a)));
      x.stdout.on('data', (d: Buffer) => s.stdout(d));
      x.stderr.on('data', (d: Buffer) => s.stderr(d));
      x.stdin.on('error', () => undefined);
      s.onStdin((d) => (d === null ? x.stdin.end() : x.stdin.write(d)));
      s.onClose(() => x.stdin.end());
      void x.result.then((r) => s.exit(r.exitCode));
    },
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
  await stopPod();
  await fake?.close();
});

function output() {
  const s = new PassThrough();
  let text = '';
  s.on('data', (d) => (text += d));
  return { s, text: () => text };
}

describe('the in-pod part in a local cell (contract simulation of the API, real init, tar and Landlock)', () => {
  it('tar in, the task under the rendered Landlock rules, tar out, the same change set; the pod ends with the session', async () => {
    const sb = makeSandbox({ 'README.md': 'hello\n', 'src/a.txt': 'a\n', '.env': 'SECRET=1\n' });
    try {
      await startPod();
      const ws = `${pod!.sb.project}/workspace`;
      const out = output();
      const r = await runK8sTask({
        api,
        namespace: 'nanocell',
        shape: 'default',
        policy,
        workspace: sb.project,
        stateRoot: sb.stateRoot,
        workspacePath: ws,
        command: [
          'sh',
          '-c',
          [
            'cat README.md',
            'test -e .env || echo no-env',
            // Scratch places are executable as locally (the workspace may exec, the default).
            'cp /usr/bin/true /tmp/t && /tmp/t && echo tmp-exec-ok',
            // The run dir is writable but not in the rendered exec rules: Landlock refuses.
            `cp /usr/bin/true ${pod!.sb.project}/run/t; ${pod!.sb.project}/run/t || echo run-exec-refused`,
            // Outside the rendered write rules: Landlock refuses.
            `echo x > ${pod!.sb.project}/escape || echo write-refused`,
            'echo changed > src/a.txt; rm README.md; mkdir -p d; echo new > d/b.txt',
          ].join('; '),
        ],
        stdout: out.s,
        stderr: out.s,
        claimTimeoutMs: 20_000,
        allowDegraded: [...ALWAYS_DEGRADED],
      });
      expect(out.text()).toContain('hello');
      expect(out.text()).toContain('no-env');
      expect(out.text()).toContain('tmp-exec-ok');
      expect(out.text()).toContain('run-exec-refused');
      expect(out.text()).toContain('write-refused');
      expect([r.exitCode, r.endReason, r.changes?.status]).toEqual([0, 'exited', 'ok']);
      const dir = `${sb.stateRoot}/changes/${r.taskId}`;
      const diff = renderDiff(dir, sb.project);
      expect(diff).toContain('+changed');
      expect(diff).toContain('d/b.txt');
      expect(diff).not.toContain('escape');
      applyChangeSet(dir, sb.project);
      expect(fs.readFileSync(`${sb.project}/src/a.txt`, 'utf8')).toBe('changed\n');
      expect(fs.readFileSync(`${sb.project}/d/b.txt`, 'utf8')).toBe('new\n');
      expect(fs.existsSync(`${sb.project}/README.md`)).toBe(false);
      expect(fs.readFileSync(`${sb.project}/.env`, 'utf8')).toBe('SECRET=1\n');
      // The session's end ended the pod's init (pid 1 of the pod): nothing is left running.
      expect((await pod!.pid1.result).exitCode).toBe(0);
      expect(fake.claims.size).toBe(0);
    } finally {
      await stopPod();
      sb.cleanup();
    }
  });

  it('Ctrl-C (abort) mid-command: the command is killed in the pod, the claim deleted, the pod ends', async () => {
    const sb = makeSandbox({ 'README.md': 'hello\n' });
    try {
      await startPod();
      const ac = new AbortController();
      const out = output();
      const run = runK8sTask({
        api,
        namespace: 'nanocell',
        shape: 'default',
        policy,
        workspace: sb.project,
        stateRoot: sb.stateRoot,
        workspacePath: `${pod!.sb.project}/workspace`,
        command: ['sh', '-c', 'echo started; exec sleep 60'],
        stdout: out.s,
        stderr: out.s,
        abort: ac.signal,
        claimTimeoutMs: 20_000,
        allowDegraded: [...ALWAYS_DEGRADED],
      });
      for (let i = 0; i < 400 && !out.text().includes('started'); i++)
        await new Promise((r) => setTimeout(r, 25));
      ac.abort();
      const r = await run;
      expect([r.exitCode, r.endReason]).toEqual([137, 'killed']);
      expect(fake.claims.size).toBe(0);
      expect((await pod!.pid1.result).exitCode).toBe(0);
      const ps = await pod!.cell.run([
        'sh',
        '-c',
        'for p in /proc/[0-9]*; do cat $p/comm; done 2>/dev/null | grep -c sleep',
      ]);
      expect(ps.stdout.trim()).toBe('0');
    } finally {
      await stopPod();
      sb.cleanup();
    }
  });
});
