// The part of the Kubernetes API the backend uses, over @kubernetes/client-node: SandboxClaims
// (create, get, watch until Ready, delete), the proxy Service's address, and pods/exec as a
// byte channel (the v5 channel protocol: stdin 0, stdout 1, stderr 2, status 3, close 255).
// Every API error becomes a NanocellError naming the status and the fix.
import { PassThrough, Duplex } from 'node:stream';
import type * as K8s from '@kubernetes/client-node';
import { NanocellError } from '../util/errors.js';
import { apiError, clientModule, loadKubeConfig, type ClientModule } from './apiBase.js';
import { API_VERSION, EXTENSIONS_API, EXTENSIONS_GROUP } from './constants.js';

export interface ClaimStatus {
  ready: boolean;
  /** Ready=False with a reason the controller will not retry (for example no warm pool). */
  failed?: string;
  sandbox?: { name: string; podIPs: string[] };
  resourceVersion: string;
}

type Obj = Record<string, unknown>;

const CLAIMS = { group: EXTENSIONS_GROUP, version: API_VERSION, plural: 'sandboxclaims' } as const;
/** Reasons after which a claim will not become Ready by waiting. */
const TERMINAL_REASONS = new Set(['WarmPoolNotFound', 'TemplateNotFound', 'Failed', 'Expired']);

/** The API client for the kubeconfig from the usual places (or the given file and context). */
export async function connectK8s(
  opts: { kubeconfig?: string; context?: string } = {},
): Promise<K8sApi> {
  const k8s = await clientModule();
  return new K8sApi(loadKubeConfig(k8s, opts), k8s);
}

function claimStatus(o: Obj): ClaimStatus {
  const status = (o.status ?? {}) as Obj;
  const conds = (status.conditions ?? []) as {
    type: string;
    status: string;
    reason?: string;
    message?: string;
  }[];
  const ready = conds.find((c) => c.type === 'Ready');
  const sb = status.sandbox as { name?: string; podIPs?: string[] } | undefined;
  return {
    ready: ready?.status === 'True' && !!sb?.name,
    ...(ready?.status === 'False' && ready.reason && TERMINAL_REASONS.has(ready.reason)
      ? { failed: `${ready.reason}: ${ready.message ?? ''}`.trim() }
      : {}),
    ...(sb?.name ? { sandbox: { name: sb.name, podIPs: sb.podIPs ?? [] } } : {}),
    resourceVersion: String(((o.metadata ?? {}) as Obj).resourceVersion ?? ''),
  };
}

export class K8sApi {
  private readonly custom: K8s.CustomObjectsApi;
  private readonly core: K8s.CoreV1Api;

  constructor(
    readonly kc: K8s.KubeConfig,
    private readonly k8s: ClientModule,
  ) {
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  async createClaim(o: {
    namespace: string;
    name: string;
    warmPool: string;
    shutdownTime: Date;
    labels: Record<string, string>;
  }): Promise<ClaimStatus> {
    const body = {
      apiVersion: EXTENSIONS_API,
      kind: 'SandboxClaim',
      metadata: { name: o.name, labels: o.labels },
      spec: {
        warmPoolRef: { name: o.warmPool },
        // A backstop if the supervisor dies without deleting the claim.
        lifecycle: {
          shutdownTime: o.shutdownTime.toISOString().replace(/\.\d+Z$/, 'Z'),
          shutdownPolicy: 'Delete',
        },
      },
    };
    try {
      const created = (await this.custom.createNamespacedCustomObject({
        ...CLAIMS,
        namespace: o.namespace,
        body,
      })) as Obj;
      return claimStatus(created);
    } catch (e) {
      throw apiError(`creating SandboxClaim ${o.name}`, e);
    }
  }

  /** The shape's SandboxTemplate as the cluster holds it (render names it after the shape). */
  async getTemplate(namespace: string, name: string): Promise<Obj> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        ...CLAIMS,
        plural: 'sandboxtemplates',
        namespace,
        name,
      })) as Obj;
    } catch (e) {
      throw apiError(`reading SandboxTemplate ${name}`, e);
    }
  }

  async getClaim(namespace: string, name: string): Promise<ClaimStatus> {
    try {
      return claimStatus(
        (await this.custom.getNamespacedCustomObject({ ...CLAIMS, namespace, name })) as Obj,
      );
    } catch (e) {
      throw apiError(`reading SandboxClaim ${name}`, e);
    }
  }

  /** Deletes the claim; a claim already gone is fine. */
  async deleteClaim(namespace: string, name: string): Promise<void> {
    try {
      await this.custom.deleteNamespacedCustomObject({
        ...CLAIMS,
        namespace,
        name,
        propagationPolicy: 'Background',
      });
    } catch (e) {
      const err = apiError(`deleting SandboxClaim ${name}`, e);
      if ((err as { status?: number }).status !== 404) throw err;
    }
  }

  /**
   * Waits with a watch (no polling) until the claim is Ready. A watch that ends is resumed
   * from the last resourceVersion seen; one the server expired (410 Gone) is resumed from a
   * fresh read of the claim, which also catches a transition that happened in between.
   */
  async waitReady(
    namespace: string,
    name: string,
    from: ClaimStatus,
    opts: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<ClaimStatus & { sandbox: { name: string; podIPs: string[] }; restarts: number }> {
    const deadline = Date.now() + opts.timeoutMs;
    let current = from;
    let restarts = 0;
    const path = `/apis/${EXTENSIONS_GROUP}/${API_VERSION}/namespaces/${namespace}/sandboxclaims`;
    for (;;) {
      if (current.failed) {
        throw new NanocellError(
          `SandboxClaim ${name} failed: ${current.failed}`,
          'check the warm pool and template (kubectl describe sandboxclaim)',
          'RUNTIME',
        );
      }
      if (current.ready && current.sandbox)
        return { ...current, sandbox: current.sandbox, restarts };
      if (opts.signal?.aborted)
        throw new NanocellError('interrupted while waiting for a sandbox', '', 'RUNTIME');
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new NanocellError(
          `SandboxClaim ${name} was not Ready within ${Math.round(opts.timeoutMs / 1000)} s`,
          'raise the warm pool replicas or check the controller',
          'RUNTIME',
        );
      }
      const r = await this.watchOnce(path, name, current.resourceVersion, left, opts.signal);
      if (r.kind === 'status') current = r.status;
      else if (r.kind === 'gone') {
        restarts++;
        current = await this.getClaim(namespace, name);
      } else if (r.kind === 'deleted') {
        throw new NanocellError(
          `SandboxClaim ${name} was deleted while waiting`,
          'someone or something deleted it: retry',
          'RUNTIME',
        );
      } else {
        restarts++;
        if (r.resourceVersion) current = { ...current, resourceVersion: r.resourceVersion };
      }
    }
  }

  private watchOnce(
    path: string,
    name: string,
    resourceVersion: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<
    | { kind: 'status'; status: ClaimStatus }
    | { kind: 'gone' }
    | { kind: 'deleted' }
    | { kind: 'ended'; resourceVersion?: string }
  > {
    return new Promise((resolve, reject) => {
      let settled = false;
      let controller: AbortController | undefined;
      let lastRv: string | undefined;
      const finish = (v: Parameters<typeof resolve>[0] | Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        controller?.abort();
        if (v instanceof Error) reject(v);
        else resolve(v);
      };
      const timer = setTimeout(() => finish({ kind: 'ended' }), timeoutMs);
      const onAbort = () => finish({ kind: 'ended' });
      signal?.addEventListener('abort', onAbort);
      const query = {
        fieldSelector: `metadata.name=${name}`,
        allowWatchBookmarks: true,
        ...(resourceVersion ? { resourceVersion } : {}),
      };
      new this.k8s.Watch(this.kc)
        .watch(
          path,
          query,
          (type: string, obj: Obj) => {
            if (type === 'ERROR') {
              const code = (obj as { code?: number }).code;
              return finish(
                code === 410
                  ? { kind: 'gone' }
                  : apiError('watching the claim', { code, message: String(obj.message ?? '') }),
              );
            }
            const rv = String(((obj.metadata ?? {}) as Obj).resourceVersion ?? '');
            if (rv) lastRv = rv;
            if (type === 'BOOKMARK') return;
            if (type === 'DELETED') return finish({ kind: 'deleted' });
            const s = claimStatus(obj);
            if (s.ready || s.failed) finish({ kind: 'status', status: s });
          },
          (err: unknown) => {
            const code = (err as { statusCode?: number } | null)?.statusCode;
            if (code === 410) return finish({ kind: 'gone' });
            if (err && code)
              return finish(
                apiError('watching the claim', { code, message: (err as Error).message }),
              );
            finish({ kind: 'ended', ...(lastRv ? { resourceVersion: lastRv } : {}) });
          },
        )
        .then((c) => {
          controller = c;
          if (settled) c.abort();
        })
        .catch((e: unknown) => finish(apiError('watching the claim', e)));
    });
  }

  /** The proxy tier's ClusterIP: cells have no DNS, so they are given the address. */
  async serviceIP(namespace: string, name: string): Promise<string> {
    try {
      const svc = await this.core.readNamespacedService({ namespace, name });
      const ip = svc.spec?.clusterIP;
      if (!ip || ip === 'None') throw new Error('the Service has no ClusterIP');
      return ip;
    } catch (e) {
      throw apiError(`reading Service ${name}`, e);
    }
  }

  /**
   * A pods/exec session as a duplex byte stream: what is written goes to the command's stdin,
   * what it prints on stdout is read. stderr lines go to onStderr; `status` settles with the
   * exec's final V1Status (or the socket's loss).
   */
  async execChannel(o: {
    namespace: string;
    pod: string;
    container: string;
    command: string[];
    onStderr?: (text: string) => void;
  }): Promise<{ channel: Duplex; status: Promise<K8s.V1Status | undefined> }> {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stderr.on('data', (d: Buffer) => o.onStderr?.(d.toString('utf8')));
    let settle!: (s: K8s.V1Status | undefined) => void;
    const status = new Promise<K8s.V1Status | undefined>((r) => (settle = r));
    let ws: Awaited<ReturnType<K8s.Exec['exec']>>;
    try {
      ws = await new this.k8s.Exec(this.kc).exec(
        o.namespace,
        o.pod,
        o.container,
        o.command,
        stdout,
        stderr,
        stdin,
        false,
        (s) => settle(s),
      );
    } catch (e) {
      throw apiError(`exec in pod ${o.pod}`, e);
    }
    ws.on('close', () => {
      settle(undefined);
      if (!stdout.writableEnded) stdout.end();
    });
    const channel = Duplex.from({ readable: stdout, writable: stdin });
    channel.on('close', () => ws.close());
    return { channel, status };
  }
}
