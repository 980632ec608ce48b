// The supervisor's side of the proxy tier's control API (src/net/tenantControl.ts): register
// a claim's rules and token, follow its decisions, remove it. The endpoint is an http:// URL
// or, for tests and sidecars, a unix socket path.
import http from 'node:http';
import type { Policy } from '../policy/defaults.js';
import { NanocellError } from '../util/errors.js';
import type { TenantEvent } from '../net/tenants.js';

export type TierEvent = TenantEvent;

export class ProxyTierClient {
  private readonly followers = new Map<string, http.ClientRequest>();

  constructor(
    private readonly endpoint: string,
    private readonly token: string,
  ) {}

  async register(
    claim: string,
    spec: { token: string; podIPs: string[]; network: Policy['network'] },
  ): Promise<void> {
    const r = await this.request('PUT', `/v1/tenants/${encodeURIComponent(claim)}`, spec);
    if (r.status !== 200 && r.status !== 201) {
      throw new NanocellError(
        `the proxy tier refused claim ${claim}: ${r.status} ${r.text.trim()}`,
        'check the tier (nanocell doctor --backend k8s)',
        'RUNTIME',
      );
    }
  }

  async unregister(claim: string): Promise<void> {
    this.followers.get(claim)?.destroy();
    this.followers.delete(claim);
    const r = await this.request('DELETE', `/v1/tenants/${encodeURIComponent(claim)}`);
    if (r.status !== 204 && r.status !== 404) {
      throw new NanocellError(
        `the proxy tier did not remove claim ${claim}: ${r.status}`,
        'it expires with the tier; report this',
        'RUNTIME',
      );
    }
  }

  /** Streams the claim's decisions to `fn` until unregister(). */
  follow(claim: string, fn: (e: TierEvent) => void): void {
    const req = http.get(
      this.target('GET', `/v1/tenants/${encodeURIComponent(claim)}/events`),
      (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buf += d;
          let i: number;
          while ((i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            try {
              fn(JSON.parse(line) as TierEvent);
            } catch {
              // a torn line from a dying tier: nothing to record
            }
          }
        });
      },
    );
    req.on('error', () => undefined);
    this.followers.set(claim, req);
  }

  private target(method: string, path: string): http.RequestOptions {
    const headers = { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' };
    if (this.endpoint.startsWith('/')) return { socketPath: this.endpoint, path, method, headers };
    const u = new URL(this.endpoint);
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || 80, path, method, headers };
  }

  private request(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request(this.target(method, path), (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
      req.on('error', (e) =>
        reject(
          new NanocellError(
            `cannot reach the proxy tier at ${this.endpoint}: ${e.message}`,
            'check --proxy-control',
            'RUNTIME',
          ),
        ),
      );
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }
}
