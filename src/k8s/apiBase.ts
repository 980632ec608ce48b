// The Kubernetes client library and what every caller of the API shares: loading it lazily,
// the kubeconfig from the usual places, API errors as one-line NanocellErrors with a fix, and
// a raw JSON GET for objects the generated models would rename.
import http from 'node:http';
import https from 'node:https';
import type * as K8s from '@kubernetes/client-node';
import { NanocellError } from '../util/errors.js';

export type ClientModule = typeof K8s;

/**
 * The client library, loaded on first use: it is large, and only Kubernetes commands need it
 * (the bundled CLI keeps it external, so every other command starts without it).
 */
export async function clientModule(): Promise<ClientModule> {
  return import('@kubernetes/client-node');
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

/** An API error as a one-line NanocellError. */
export function apiError(what: string, e: unknown): NanocellError {
  const code = (e as { code?: number }).code ?? (e as { statusCode?: number }).statusCode;
  let message = (e as Error).message ?? String(e);
  const body = (e as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? message;
    } catch {
      // not a Status object
    }
  }
  message = message.split('\n')[0]!.slice(0, 300);
  const fix =
    code === 404
      ? 'install agent-sandbox v1beta1 (nanocell doctor --backend k8s checks it) and the shape (nanocell k8s render | kubectl apply -f -)'
      : code === 403 || code === 401
        ? 'grant this identity create/get/watch/delete on sandboxclaims and create on pods/exec in the namespace'
        : code === 409
          ? 'a claim of that name exists; retry (names are random)'
          : code === 422
            ? 'the cluster rejected the object: check that its agent-sandbox version serves v1beta1'
            : 'check the cluster (nanocell doctor --backend k8s)';
  const err = new NanocellError(`${what}: ${code ?? 'error'} ${message}`, fix, 'RUNTIME');
  (err as NanocellError & { status?: number }).status = code;
  return err;
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
