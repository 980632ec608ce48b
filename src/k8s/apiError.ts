// Kubernetes API errors as one-line NanocellErrors that name the status and the fix.
import { NanocellError } from '../util/errors.js';

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
