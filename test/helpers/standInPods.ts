// The pods of the API stand-in (fakeKubeApi.ts, a contract simulation): host processes, no
// container. A pod is the real init binary as its "pid 1" with --control-listen (as the rendered
// template runs it, Landlock off outside a pod), started when the controller binds a claim and
// sent SIGTERM when the claim is deleted, as the kubelet does; pods/exec runs the real
// `init --attach` with the exec's stdio as its own.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { POD } from '../../src/k8s/constants.js';
import { ALWAYS_DEGRADED } from '../../src/k8s/mapping.js';
import { renderShape, type K8sObject } from '../../src/k8s/render.js';
import type { Policy } from '../../src/policy/defaults.js';
import { resolvePolicy } from '../../src/policy/load.js';
import { REPO, TEST_ROOT } from './cells.js';
import type { ExecSession } from './fakeKubeApi.js';

const INIT = path.join(REPO, 'native', 'build', 'nanocell-init');

export class HostPods {
  readonly dir = `${TEST_ROOT}/k8s-pods-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  private readonly pods = new Map<string, ChildProcess>();
  private readonly attaches = new Set<number>();

  start(pod: string): void {
    fs.mkdirSync(this.dir, { recursive: true });
    const child = spawn(INIT, ['--control-listen', this.sock(pod), '--landlock', 'off'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    this.pods.set(pod, child);
    child.once('exit', () => this.pods.delete(pod));
  }

  /** The claim's pod goes, as the controller deletes it with the claim. */
  deleted(claim: string): void {
    this.pods.get(`sb-${claim}`)?.kill('SIGTERM');
  }

  exec(s: ExecSession): void {
    const [bin, ...args] = s.command;
    if (bin !== POD.init || args[0] !== '--attach' || args[1] !== POD.controlSocket) {
      s.stderr(Buffer.from(`stand-in runs only init --attach, not ${s.command.join(' ')}\n`));
      return s.exit(126);
    }
    const child = spawn(INIT, ['--attach', this.sock(s.pod)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.attaches.add(child.pid!);
    child.stdout!.on('data', (d: Buffer) => s.stdout(d));
    child.stderr!.on('data', (d: Buffer) => s.stderr(d));
    child.stdin!.on('error', () => undefined);
    s.onStdin((d) => (d === null ? child.stdin!.end() : child.stdin!.write(d)));
    // The exec stream lost: the kubelet closes the command's stdin, as here.
    s.onClose(() => child.stdin!.end());
    child.once('exit', (code) => {
      this.attaches.delete(child.pid!);
      s.exit(code ?? 137);
    });
  }

  /** Every pod init and attach process has ended (they end asynchronously after the claim). */
  async expectGone(): Promise<void> {
    for (let i = 0; i < 100 && (this.pods.size || this.attaches.size); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect([this.pods.size, this.attaches.size]).toEqual([0, 0]);
  }

  close(): void {
    for (const p of this.pods.values()) p.kill('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private sock(pod: string): string {
    return `${this.dir}/${pod}.sock`;
  }
}

/** The stand-in's SandboxTemplates: the `default` shape as `k8s render` makes it. */
export function renderedTemplates(policy: Policy = resolvePolicy({})): Record<string, K8sObject> {
  const r = renderShape({
    policy,
    shape: 'default',
    namespace: 'nanocell',
    image: 'registry.example/nanocell-cell:test',
    replicas: 1,
    arch: process.arch === 'arm64' ? 'aarch64' : 'x86_64',
    allowDegraded: [...ALWAYS_DEGRADED],
  });
  return { default: r.objects[0]! };
}
