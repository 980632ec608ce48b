// The proxy tier's tenants: one per sandbox claim. Each has its own rules, its own egress
// proxy (the per-cell proxy of src/net/proxy.ts, unchanged, on a private unix socket), a
// token the cell presents, the pod addresses it may come from, and a bounded stream of its
// decisions for the supervisor that registered it. Tokens are kept only as SHA-256 digests.
import { createHash, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { policySchema } from '../policy/schema.js';
import { NanocellError } from '../util/errors.js';
import { parseTarget } from './rules.js';
import { checkAddress, compileNetRules } from './rules.js';
import { startEgressProxy, type EgressProxy, type ProxyEvent } from './proxy.js';
import { systemResolver, type Resolver } from './dial.js';

/** A decision as the tier records it: the proxy's event, or a refusal before any rule. */
export type TenantEvent = (ProxyEvent & { tenant: string }) | RefusalEvent;

export interface RefusalEvent {
  time: string;
  tenant: string | null;
  decision: 'denied';
  rule: 'unauthenticated' | 'wrong-source';
  reason: string;
  source: string;
  protocol: 'http' | 'connect' | 'socks5';
}

export const tenantSpecSchema = z.strictObject({
  /** The claim's secret, presented as Proxy-Authorization or the SOCKS5 password. */
  token: z.string().regex(/^[A-Za-z0-9._~-]{32,256}$/, 'a token is 32-256 URL-safe characters'),
  /** The sandbox pod's addresses (status.sandbox.podIPs): connections from elsewhere are refused. */
  podIPs: z.array(z.string()).min(1).max(8),
  network: policySchema.shape.network,
});
export type TenantSpec = z.output<typeof tenantSpecSchema>;

const TENANT_ID = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** Events kept per tenant for a supervisor that subscribes late or reconnects. */
const EVENT_BACKLOG = 4096;
const MAX_TENANTS = 4096;

export interface Tenant {
  readonly id: string;
  readonly podIPs: ReadonlySet<string>;
  readonly proxy: EgressProxy;
  readonly socketPath: string;
}

interface TenantState extends Tenant {
  digest: Buffer;
  backlog: TenantEvent[];
  dropped: number;
  subscribers: Set<(e: TenantEvent | null) => void>;
}

const digestOf = (token: string) => createHash('sha256').update(token, 'utf8').digest();

/** The address as a pod would present it: IPv4-mapped IPv6 folded to IPv4. */
export function normalizeSource(addr: string | undefined): string {
  const a = (addr ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  const t = parseTarget(a.includes(':') ? `[${a}]` : a);
  return t?.kind === 'ip' ? t.text : a;
}

export class TenantRegistry {
  private readonly tenants = new Map<string, TenantState>();
  private readonly byDigest = new Map<string, TenantState>();
  private readonly resolver: Resolver;

  constructor(
    private readonly socketDir: string,
    opts: { resolver?: Resolver; onRefused?: (e: RefusalEvent) => void } = {},
  ) {
    this.resolver = opts.resolver ?? systemResolver;
    this.onRefused = opts.onRefused ?? (() => undefined);
  }

  private readonly onRefused: (e: RefusalEvent) => void;

  /** Adds or replaces a tenant; a replaced tenant's connections are closed. */
  async put(id: string, spec: TenantSpec): Promise<Tenant> {
    if (!TENANT_ID.test(id)) {
      throw new NanocellError(
        `tenant id ${JSON.stringify(id)} is not a claim name`,
        'use the SandboxClaim name',
        'USAGE',
      );
    }
    if (!this.tenants.has(id) && this.tenants.size >= MAX_TENANTS) {
      throw new NanocellError(
        `the proxy tier already serves ${MAX_TENANTS} tenants`,
        'delete finished claims',
        'STATE',
      );
    }
    const podIPs = new Set(spec.podIPs.map(normalizeSource));
    for (const ip of podIPs) {
      if (parseTarget(ip.includes(':') ? `[${ip}]` : ip)?.kind !== 'ip') {
        throw new NanocellError(
          `podIPs entry ${JSON.stringify(ip)} is not an IP address`,
          'pass status.sandbox.podIPs',
          'USAGE',
        );
      }
    }
    const n = spec.network ?? {};
    const rules = compileNetRules({
      allow: n.allow ?? [],
      deny: n.deny ?? [],
      cidrs: n.cidrs ?? [],
      hosts: n.hosts ?? {},
    });
    // The tier's own loopback holds every tenant's proxy: no tenant rule may reach it.
    for (const lo of ['127.0.0.1', '::1']) {
      if (checkAddress(rules, lo).decision === 'allowed') {
        throw new NanocellError(
          "a tenant may not reach the proxy tier's loopback",
          'remove loopback ranges from network.cidrs',
          'POLICY',
        );
      }
    }
    const digest = digestOf(spec.token);
    const clash = this.byDigest.get(digest.toString('hex'));
    if (clash && clash.id !== id) {
      throw new NanocellError(
        'this token is already in use by another tenant',
        'use a fresh random token per claim',
        'USAGE',
      );
    }
    await this.delete(id);
    const socketPath = path.join(this.socketDir, `${id}.sock`);
    // Events only arrive once a connection is served, after `state` is set.
    const ref: { state?: TenantState } = {};
    const proxy = await startEgressProxy({
      rules,
      socketPath,
      resolver: this.resolver,
      onEvent: (e) => this.record(ref.state!, { ...e, tenant: id }),
    });
    const state: TenantState = (ref.state = {
      id,
      podIPs,
      socketPath,
      digest,
      backlog: [],
      dropped: 0,
      subscribers: new Set(),
      proxy,
    });
    this.tenants.set(id, state);
    this.byDigest.set(digest.toString('hex'), state);
    return state;
  }

  async delete(id: string): Promise<boolean> {
    const t = this.tenants.get(id);
    if (!t) return false;
    this.tenants.delete(id);
    this.byDigest.delete(t.digest.toString('hex'));
    await t.proxy.close();
    for (const s of t.subscribers) s(null);
    t.subscribers.clear();
    return true;
  }

  get(id: string): Tenant | undefined {
    return this.tenants.get(id);
  }

  size(): number {
    return this.tenants.size;
  }

  /**
   * Who a connection is: the tenant whose token it presented, if it came from that tenant's
   * pod. Any other case is refused and recorded (to the tenant whose pod it came from, too).
   */
  authenticate(
    token: string | undefined,
    source: string,
    protocol: RefusalEvent['protocol'],
  ): Tenant | undefined {
    const t = token === undefined ? undefined : this.byDigest.get(digestOf(token).toString('hex'));
    // The map lookup is by digest; compare again in constant time so timing says nothing.
    const match = t && token !== undefined && timingSafeEqual(t.digest, digestOf(token));
    if (match && t.podIPs.has(source)) return t;
    const fromPod = [...this.tenants.values()].find((x) => x.podIPs.has(source));
    const e: RefusalEvent = {
      time: new Date().toISOString(),
      tenant: match ? t.id : (fromPod?.id ?? null),
      decision: 'denied',
      rule: match ? 'wrong-source' : 'unauthenticated',
      reason: match
        ? `the token of ${t.id} was presented from ${source}, which is not its pod`
        : token === undefined
          ? 'no proxy credentials'
          : 'unknown proxy token',
      source,
      protocol,
    };
    this.onRefused(e);
    if (match) this.record(t, e);
    if (fromPod && fromPod !== t) this.record(fromPod, e);
    return undefined;
  }

  /** Replays the backlog, then follows; `null` marks the end (tenant deleted). */
  subscribe(id: string, fn: (e: TenantEvent | null) => void): (() => void) | undefined {
    const t = this.tenants.get(id);
    if (!t) return undefined;
    for (const e of t.backlog) fn(e);
    t.subscribers.add(fn);
    return () => t.subscribers.delete(fn);
  }

  async close(): Promise<void> {
    for (const id of [...this.tenants.keys()]) await this.delete(id);
  }

  private record(t: TenantState, e: TenantEvent): void {
    t.backlog.push(e);
    if (t.backlog.length > EVENT_BACKLOG) {
      t.backlog.shift();
      t.dropped++;
    }
    for (const s of t.subscribers) s(e);
  }
}
