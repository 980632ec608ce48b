// A SandboxClaim's status as the backend reads it, and one watch of it: until it is Ready or
// failed, deleted, expired by the server (410 Gone), or the watch ends. K8sApi.waitReady loops
// over these.
import type * as K8s from '@kubernetes/client-node';
import { apiError } from './apiError.js';

type Obj = Record<string, unknown>;
type ClientModule = typeof K8s;

export interface ClaimStatus {
  ready: boolean;
  /** Ready=False with a reason the controller will not retry (for example no warm pool). */
  failed?: string;
  sandbox?: { name: string; podIPs: string[] };
  resourceVersion: string;
}

/** Reasons after which a claim will not become Ready by waiting. */
const TERMINAL_REASONS = new Set(['WarmPoolNotFound', 'TemplateNotFound', 'Failed', 'Expired']);

export function claimStatus(o: Obj): ClaimStatus {
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

/** One watch of the claim, from `resourceVersion`. */
export function watchClaimOnce(
  k8s: ClientModule,
  kc: K8s.KubeConfig,
  {
    path,
    name,
    resourceVersion,
    timeoutMs,
    signal,
  }: {
    path: string;
    name: string;
    resourceVersion: string;
    timeoutMs: number;
    signal: AbortSignal | undefined;
  },
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
    new k8s.Watch(kc)
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
