// The part of the Kubernetes API the backend uses, over @kubernetes/client-node: SandboxClaims
// (create, get, watch until Ready, delete), the proxy Service's address, and pods/exec as a
// byte channel (the v5 channel protocol: stdin 0, stdout 1, stderr 2, status 3, close 255).
// Every API error becomes a NanocellError naming the status and the fix.
import http from 'node:http';
import https from 'node:https';
import { PassThrough, Duplex } from 'node:stream';
import type * as K8s from '@kubernetes/client-node';
import { NanocellError } from '../util/errors.js';
import { API_VERSION, EXTENSIONS_API, EXTENSIONS_GROUP } from './constants.js';
import { apiError } from './apiError.js';
import { claimStatus, watchClaimOnce, type ClaimStatus } from './claimWatch.js';

export type { ClaimStatus } from './claimWatch.js';

type Obj = Record<string, unknown>;

const CLAIMS = { group: EXTENSIONS_GROUP, version: API_VERSION, plural: 'sandboxclaims' } as const;

type ClientModule = typeof K8s;

/**
 * The client library, loaded on first use: it is large, and only Kubernetes commands need it
 * (the bundled CLI keeps it external, so every other command starts without it).
 */
export async function clientModule(): Promise<ClientModule> {
  return import('@kubernetes/client-node');
}

/** The API client for the kubeconfig from the usual places (or the given file and context). */
export async function connectK8s(
  opts: { kubeconfig?: string; context?: string } = {},
): Promise<K8sApi> {
  const k8s = await clientModule();
  return new K8sApi(loadKubeConfig(k8s, opts), k8s);
}

export function loadKubeConfig(
  k8s: ClientModule,
  opts: { kubeconfig?: string; context?: string } = {},
): K8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  try {
    // KUBECONFIG, then ~/.kube/config, then the in-cluster service account.
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
    if (opts.context) kc.setCurrentContext(opts.context);
  } catch (e) {
    throw new NanocellError(
      `cannot load the kubeconfig: ${(e as Error).message}`,
      'set KUBECONFIG or pass --kubeconfig',
      'HOST',
    );
  }
  if (!kc.getCurrentCluster()) {
    throw new NanocellError(
      'the kubeconfig names no current cluster',
      'set a current context (kubectl config use-context)',
      'HOST',
    );
  }
  return kc;
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
      const r = await watchClaimOnce(this.k8s, this.kc, {
        path,
        name,
        resourceVersion: current.resourceVersion,
        timeoutMs: left,
        signal: opts.signal,
      });
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

/**
 * GET of a path as plain JSON, bypassing the generated models (which rename keys such as
 * x-kubernetes-validations, so a CRD's schema would no longer be the one the server serves).
 */
export async function rawGetJson(
  kc: K8s.KubeConfig,
  path: string,
): Promise<Record<string, unknown>> {
  const server = kc.getCurrentCluster()?.server ?? '';
  const url = new URL(path, server);
  const opts: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, opts, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        if (res.statusCode !== 200) {
          return reject(Object.assign(new Error(text.slice(0, 300)), { code: res.statusCode }));
        }
        try {
          resolve(JSON.parse(text) as Record<string, unknown>);
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    req.setTimeout(15_000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}
