// A cell on Kubernetes: a sandbox claimed from a shape's warm pool, with init's control
// protocol over a pods/exec stream, the workspace pushed and pulled as tar through init, and
// the claim's egress rules registered with the proxy tier. Every ending deletes the claim
// and the tier's tenant (close() is idempotent and called from every path).
//
// The SDK's Cell (src/cell/cell.ts) is a facade over its lifecycle steps; K8sCell is the
// backend module it can wire behind `Cell.create({ backend: 'k8s' })` later. It has the same exec shape
// (InitClient's ExecHandle) so the task runner's timeout and output caps apply unchanged.
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { InitClient, type ExecHandle } from '../cell/initClient.js';
import type { Policy } from '../policy/defaults.js';
import { proxyEnvForUrls } from '../net/env.js';
import { NanocellError } from '../util/errors.js';
import type { ScopePlan } from '../workspace/scope.js';
import type { K8sApi } from './client.js';
import { CELL_CONTAINER, LABELS, MANAGER, POD, PROXY_PORTS } from './constants.js';
import { ProxyTierClient, type TierEvent } from './tierClient.js';
import { packWorkspace, unpackWorkspace, type Unpacked } from './workspaceTar.js';
import { PROXY_NAME } from './renderProxy.js';

export interface K8sCellOptions {
  api: K8sApi;
  namespace: string;
  /** The shape: its warm pool's name. */
  shape: string;
  policy: Policy;
  /** The proxy tier's control endpoint and token; required when the policy allows egress. */
  tier?: { control: string; token: string };
  claimTimeoutMs?: number;
  /**
   * Where the pod mounts the workspace (default /workspace). The contract simulation's
   * stand-in runs init outside any pod and points this at a scratch directory.
   */
  workspacePath?: string;
  signal?: AbortSignal;
  onEvent?: (e: K8sCellEvent) => void;
}

export type K8sCellEvent =
  | { type: 'claim.created'; claim: string }
  | { type: 'claim.ready'; claim: string; pod: string; podIPs: string[]; watchRestarts: number }
  | { type: 'claim.deleted'; claim: string }
  | { type: 'net'; event: TierEvent }
  | { type: 'log'; text: string };

export class K8sCell {
  private closed = false;
  readonly workspace: string;
  private constructor(
    private readonly o: K8sCellOptions,
    readonly claim: string,
    readonly pod: string,
    private readonly init: InitClient,
    private readonly channel: Duplex,
    private readonly tier: ProxyTierClient | undefined,
    /** Environment every command gets: policy env, HOME, PATH, proxy variables. */
    readonly env: string[],
  ) {
    this.workspace = o.workspacePath ?? POD.workspace;
  }

  static async create(o: K8sCellOptions): Promise<K8sCell> {
    const claim = `nc-${randomBytes(8).toString('hex')}`;
    const token = randomBytes(32).toString('base64url');
    const emit = o.onEvent ?? (() => undefined);
    const egress = o.policy.network.allow.length > 0 || o.policy.network.cidrs.length > 0;
    if (egress && !o.tier) {
      throw new NanocellError(
        'this policy allows egress, but no proxy tier was given',
        'pass --proxy-control URL and set NANOCELL_PROXY_CONTROL_TOKEN',
        'USAGE',
      );
    }
    const created = await o.api.createClaim({
      namespace: o.namespace,
      name: claim,
      warmPool: o.shape,
      // The claim outlives the task by a minute at most if the supervisor dies.
      shutdownTime: new Date(
        Date.now() + o.policy.limits.timeout + 60_000 + (o.claimTimeoutMs ?? 120_000),
      ),
      labels: { [LABELS.managedBy]: MANAGER, [LABELS.shape]: o.shape },
    });
    emit({ type: 'claim.created', claim });
    let tier: ProxyTierClient | undefined;
    let channel: Duplex | undefined;
    try {
      const ready = await o.api.waitReady(o.namespace, claim, created, {
        timeoutMs: o.claimTimeoutMs ?? 120_000,
        signal: o.signal,
      });
      emit({
        type: 'claim.ready',
        claim,
        pod: ready.sandbox.name,
        podIPs: ready.sandbox.podIPs,
        watchRestarts: ready.restarts,
      });
      const env = Object.entries(o.policy.env).map(([k, v]) => `${k}=${v}`);
      env.push(`HOME=${POD.home}`, 'PATH=/usr/local/bin:/usr/bin:/bin');
      if (egress && o.tier) {
        tier = new ProxyTierClient(o.tier.control, o.tier.token);
        await tier.register(claim, {
          token,
          podIPs: ready.sandbox.podIPs,
          network: o.policy.network,
        });
        tier.follow(claim, (event) => emit({ type: 'net', event }));
        const ip = await o.api.serviceIP(o.namespace, PROXY_NAME);
        const host = ip.includes(':') ? `[${ip}]` : ip;
        const cred = `${claim}:${token}`;
        for (const [k, v] of Object.entries(
          proxyEnvForUrls(
            `http://${cred}@${host}:${PROXY_PORTS.egress}`,
            `socks5h://${cred}@${host}:${PROXY_PORTS.egress}`,
          ),
        ))
          env.push(`${k}=${v}`);
      }
      const exec = await o.api.execChannel({
        namespace: o.namespace,
        pod: ready.sandbox.name,
        container: CELL_CONTAINER,
        command: [POD.init, '--attach', POD.controlSocket],
        onStderr: (text) => emit({ type: 'log', text }),
      });
      channel = exec.channel;
      const init = new InitClient(channel);
      init.on('log', (text: string) => emit({ type: 'log', text }));
      await init.ready();
      return new K8sCell(o, claim, ready.sandbox.name, init, channel, tier, env);
    } catch (e) {
      channel?.destroy();
      await cleanup(o, claim, tier);
      throw e;
    }
  }

  /** Starts a command in the workspace through init. */
  exec(argv: string[], opts: { env?: string[]; cwd?: string } = {}): ExecHandle {
    return this.init.exec({
      argv,
      env: [...this.env, ...(opts.env ?? [])],
      cwd: opts.cwd ?? this.workspace,
    });
  }

  /** Sends what the scope shows into the pod's workspace. */
  async pushWorkspace(scope: ScopePlan): Promise<void> {
    const h = this.exec([
      'tar',
      '-x',
      '-f',
      '-',
      '-C',
      this.workspace,
      '--no-same-owner',
      '--no-same-permissions',
    ]);
    const stderr = collectText(h.stderr);
    h.stdout.resume();
    packWorkspace(scope).pipe(h.stdin);
    const r = await h.result;
    if (r.kind !== 'exited' || r.code !== 0) {
      throw new NanocellError(
        `unpacking the workspace in the pod failed (${JSON.stringify(r)}): ${(await stderr).slice(0, 300)}`,
        'the cell image needs tar in /usr/bin',
        'RUNTIME',
      );
    }
  }

  /** Brings the pod's workspace back into `dir` (a new staging directory). */
  async pullWorkspace(
    dir: string,
    limits: { maxFiles: number; maxBytes: number },
  ): Promise<Unpacked> {
    const h = this.exec(['tar', '-c', '-f', '-', '-C', this.workspace, '.']);
    h.stdin.end();
    const stderr = collectText(h.stderr);
    const unpacked = unpackWorkspace(h.stdout, dir, limits);
    const [u, r] = await Promise.all([unpacked, h.result]);
    if (r.kind !== 'exited' || r.code !== 0) {
      throw new NanocellError(
        `packing the workspace in the pod failed: ${(await stderr).slice(0, 300)}`,
        'the cell image needs tar in /usr/bin',
        'RUNTIME',
      );
    }
    return u;
  }

  /** Ends the cell: init kills everything, the claim and the tier's tenant are deleted. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.init.shutdown();
    await Promise.race([this.init.closed, new Promise((r) => setTimeout(r, 2000))]);
    this.channel.destroy();
    await cleanup(this.o, this.claim, this.tier);
  }
}

async function cleanup(o: K8sCellOptions, claim: string, tier: ProxyTierClient | undefined) {
  const problems: string[] = [];
  if (tier) await tier.unregister(claim).catch((e: unknown) => problems.push(String(e)));
  await o.api.deleteClaim(o.namespace, claim).catch((e: unknown) => problems.push(String(e)));
  o.onEvent?.({ type: 'claim.deleted', claim });
  if (problems.length) {
    throw new NanocellError(
      `cleaning up claim ${claim} failed: ${problems.join('; ')}`,
      `delete it by hand: kubectl -n ${o.namespace} delete sandboxclaim ${claim}`,
      'RUNTIME',
    );
  }
}

function collectText(s: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    s.on('data', (d: Buffer) => {
      if (text.length < 4096) text += d.toString('utf8');
    });
    s.on('end', () => resolve(text));
    s.on('error', () => resolve(text));
  });
}
