// The cell's egress: nothing, or a proxy of its own. It listens on 127.0.0.1:3128 inside the
// cell's network namespace (the monitor makes that socket and hands it over; see adopt), or,
// without a seccomp listener, on a unix socket that init bridges that port to. The proxy
// decides and records every connection.
import type dgram from 'node:dgram';
import fs from 'node:fs';
import { connect, type Server, type Socket } from 'node:net';
import type { CaptureHandle } from '../net/capture.js';
import { systemResolver } from '../net/dial.js';
import { serveDnsUdp, type DnsDeniedEvent, type DnsStubContext } from '../net/dnsStub.js';
import { FakeAddressTable } from '../net/fakeAddrs.js';
import { serveTransparent, type TransparentEvent } from '../net/transparent.js';
import { startEgressProxy, type EgressProxy, type ProxyEvent } from '../net/proxy.js';
import { proxyEnv } from '../net/env.js';
import { withGrant, withoutGrant, type EgressDecision } from '../net/grants.js';
import { hasEgress, type NetRules } from '../net/rules.js';
import { checkSecretHosts, readSecrets, SecretBroker } from '../net/secrets.js';
import { CellCa, TlsInterceptor } from '../net/tlsIntercept.js';
import type { SecretEntry } from '../policy/secrets.js';
import type { HostMount } from '../plan/hostMounts.js';
import { checkProxyAnswers, checkRules, START_CHECK_HOST } from './selfCheck.js';
import { NanocellError } from '../util/errors.js';
import type { CellEvent } from './types.js';

/** The cell's CA bundle: the host's roots plus the cell's own CA, mounted over the generated one. */
const CELL_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export class CellNetwork {
  /** Once-grants not used yet: their rule source. */
  private readonly onceGrants = new Set<string>();
  /** Transparent capture's sockets and the connections they accepted (adoptCapture). */
  private readonly captured = new Set<Socket>();
  private readonly captureHandles: (Server | dgram.Socket)[] = [];
  /** The start check's one refusal is not the task's: it is not recorded (startCheck). */
  private checking = false;
  /** Transparent capture's and the DNS stub's contexts: they read `rules` per connection. */
  private readonly captureRules: { rules: NetRules }[] = [];

  private constructor(
    private readonly proxy: EgressProxy | undefined,
    /** The rules in force: the policy's, plus the user's grants (decide). */
    public rules: NetRules | undefined,
    private readonly onEvent: (e: CellEvent) => void,
    private readonly broker?: SecretBroker,
    /** PEM of the host's roots and the cell's CA, when secrets are brokered. */
    readonly caBundle?: string,
  ) {}

  /**
   * The user's answer to a refused destination, for connections from now on. A once-grant is
   * withdrawn by the first connection it allows (see used).
   */
  decide(host: string, port: number, decision: EgressDecision): void {
    if (!this.proxy || !this.rules) {
      throw new NanocellError(
        'this cell has no egress proxy (its policy allows no destination)',
        'allow destinations in the policy (network.allow) to review requests',
        'USAGE',
      );
    }
    if (decision === 'deny') return;
    const g = withGrant(this.rules, host, port, decision);
    this.setRules(g.rules);
    if (decision === 'once') this.onceGrants.add(g.source);
  }

  private used(rule: string): void {
    const source = rule.replace(/^allow:/, '');
    if (!this.onceGrants.delete(source) || !this.rules) return;
    this.setRules(withoutGrant(this.rules, source));
  }

  /**
   * Puts `rules` in force for connections from now on, everywhere a destination is decided:
   * the proxy, transparent capture and the DNS stub. Used by grants and by Cell.setNetwork
   * (which replaces the list, so the grants not used yet go with the old one).
   */
  setRules(rules: NetRules, o: { replace?: boolean } = {}): void {
    if (!this.proxy) {
      throw new NanocellError(
        'this cell has no egress proxy (it was started with no network.allow or network.cidrs entry)',
        'start the cell with at least one network.allow entry; its rules can then be changed at any time, even to none',
        'USAGE',
      );
    }
    if (o.replace) this.onceGrants.clear();
    this.rules = rules;
    for (const c of this.captureRules) c.rules = rules;
    this.proxy.setRules(rules);
  }

  get enabled(): boolean {
    return this.proxy !== undefined;
  }

  /**
   * Replaces the rules in force (a warm pool's claim brings its own): the proxy's and
   * transparent capture's alike, so no client keeps the old ones. Grants made so far go.
   */
  replaceRules(rules: NetRules): void {
    if (!this.proxy) {
      throw new NanocellError(
        'this cell has no egress proxy (its policy allowed no destination at start)',
        'start it with a policy that allows a destination (a pool: give the pool policy one)',
        'POLICY',
      );
    }
    this.rules = rules;
    this.onceGrants.clear();
    this.proxy.setRules(rules);
    for (const c of this.captureRules) c.rules = rules;
  }

  /**
   * The start check (selfCheck.ts) on `probe`, a connection to the proxy from the cell's
   * 127.0.0.1; without one (the unix-socket proxy), on a connection to that socket.
   */
  async startCheck(probe: Socket | undefined, where: string): Promise<void> {
    if (!this.proxy || !this.rules) return;
    const refused = checkRules(this.rules);
    const socketPath = this.proxy.socketPath;
    const conn = probe ?? (socketPath !== undefined ? connect(socketPath) : undefined);
    if (!conn) return;
    this.checking = true;
    try {
      await checkProxyAnswers(conn, where, refused);
    } finally {
      this.checking = false;
    }
  }

  /** Whether an event is the start check's own (taken once, so a task cannot hide behind it). */
  private isCheck(e: ProxyEvent): boolean {
    if (!this.checking || e.host !== START_CHECK_HOST || e.protocol !== 'connect') return false;
    this.checking = false;
    return true;
  }

  env(port: number): Record<string, string> {
    if (!this.broker) return proxyEnv(port);
    const ca = Object.fromEntries(
      [
        'NODE_EXTRA_CA_CERTS',
        'SSL_CERT_FILE',
        'REQUESTS_CA_BUNDLE',
        'CURL_CA_BUNDLE',
        'GIT_SSL_CAINFO',
      ].map((k) => [k, CELL_CA_BUNDLE]),
    );
    return { ...proxyEnv(port), ...ca, ...this.broker.env() };
  }

  static async start(o: {
    /** Compiled and validated by the resolve step. */
    rules: NetRules;
    /** Where init's bridge reaches the proxy; undefined when the monitor hands it a socket. */
    socketPath: string | undefined;
    socketOwner?: { uid: number; gid: number };
    onEvent: (e: CellEvent) => void;
    secrets?: readonly SecretEntry[];
    /**
     * A warm cell: its claim may bring secrets, so a cell with a proxy gets its CA (mounted at
     * start, which is all a claim cannot change) even when the pool's policy has none.
     */
    warm?: boolean;
    cellId?: string;
  }): Promise<CellNetwork> {
    const { rules } = o;
    const egress = hasEgress(rules);
    const brokered =
      o.secrets?.length || (o.warm && egress)
        ? await brokerSecrets(o.secrets ?? [], rules, o)
        : undefined;
    if (!egress) return new CellNetwork(undefined, rules, o.onEvent);
    // The proxy exists before the CellNetwork that owns it; its events reach it through this.
    const owner: { net?: CellNetwork } = {};
    const proxy = await startEgressProxy({
      rules,
      ...(o.socketPath !== undefined ? { socketPath: o.socketPath } : {}),
      ...(o.socketOwner ? { socketOwner: o.socketOwner } : {}),
      onEvent: (e: ProxyEvent) => {
        if (owner.net?.isCheck(e)) return;
        if (e.decision === 'allowed' && e.rule.startsWith('allow:user-once:'))
          owner.net?.used(e.rule);
        o.onEvent(toCellEvent(e));
      },
      ...(brokered ? { secrets: brokered } : {}),
    });
    if (o.socketPath !== undefined && !fs.existsSync(o.socketPath)) {
      await proxy.close();
      throw new Error(`the proxy did not create ${o.socketPath}`);
    }
    owner.net = new CellNetwork(proxy, rules, o.onEvent, brokered?.broker, brokered?.caBundle);
    return owner.net;
  }

  /**
   * A claim's secrets, in place of the warm cell's (claim.ts step 4): their values are read
   * (fail closed) before any is replaced; checkSecretHosts ran in the claim's checks.
   */
  replaceSecrets(entries: readonly SecretEntry[]): void {
    if (!this.broker) {
      if (!entries.length) return;
      throw new NanocellError(
        'this cell was started without a CA for brokered secrets',
        "give the pool's policy a network.allow entry, or start a cell without a pool",
        'POLICY',
      );
    }
    this.broker.replace(readSecrets(entries, process.env));
  }

  /** See EgressProxy.adopt. */
  adopt(server: Server, accepted: readonly Socket[] = []): void {
    if (!this.proxy) throw new Error('adopt: this cell has no proxy');
    this.proxy.adopt(server, accepted);
  }

  /**
   * Serves transparent capture (src/net/transparent.ts) and the DNS stub on the sockets the
   * monitor made in the cell's network namespace. One fake-address table per cell: the stub
   * fills it, the transparent listeners read it.
   */
  adoptCapture(h: Record<CaptureHandle, Server | dgram.Socket>): void {
    const rules = this.rules!;
    const dns: DnsStubContext = {
      rules,
      table: new FakeAddressTable(),
      onDenied: (e) => this.onEvent(dnsDeniedEvent(e)),
    };
    const ctx = {
      rules,
      table: dns.table,
      dns,
      resolver: systemResolver,
      onEvent: (e: TransparentEvent) => this.onEvent(toCellEvent(e)),
      track: (s: Socket) => {
        this.captured.add(s);
        s.once('close', () => this.captured.delete(s));
      },
    };
    this.captureRules.push(dns, ctx);
    serveTransparent(h.transparent4 as Server, ctx);
    serveTransparent(h.transparent6 as Server, ctx);
    serveDnsUdp(h.dns4 as dgram.Socket, dns);
    serveDnsUdp(h.dns6 as dgram.Socket, dns);
    this.captureHandles.push(...Object.values(h));
  }

  async close(): Promise<void> {
    for (const h of this.captureHandles) h.close();
    for (const s of this.captured) s.destroy();
    await this.proxy?.close();
  }
}

function dnsDeniedEvent(e: DnsDeniedEvent): CellEvent {
  return { type: 'dns.denied', ...e };
}

/** The cell's CA bundle, written to the cell dir and bound over the generated one. */
export function cellCaMount(net: CellNetwork, cellDir: string): HostMount[] {
  if (net.caBundle === undefined) return [];
  const file = `${cellDir}/ca-bundle.crt`;
  fs.writeFileSync(file, net.caBundle, { mode: 0o644 });
  return [{ source: file, cell: CELL_CA_BUNDLE, kind: 'file', exec: false }];
}

/**
 * Checks its hosts are allowed, reads every secret's value (fail closed), and makes the cell's
 * CA. Nothing of it is written into the cell but the CA certificate.
 */
async function brokerSecrets(
  entries: readonly SecretEntry[],
  rules: NetRules,
  o: { onEvent: (e: CellEvent) => void; cellId?: string },
) {
  checkSecretHosts(entries, rules);
  const secrets = readSecrets(entries, process.env);
  const broker = new SecretBroker(secrets, (e) => o.onEvent({ ...e }));
  const ca = await CellCa.create(o.cellId ?? 'cell');
  const roots = hostRoots();
  const caBundle = `${roots}${roots.endsWith('\n') || !roots ? '' : '\n'}${ca.certPem}`;
  return { broker, interceptor: new TlsInterceptor(ca, broker), caBundle };
}

let rootsSeen: { key: string; pem: string } | undefined;

/**
 * The host's CA bundle (about 200 KB), read again only when it changes: a warm pool's every
 * cell carries it, and a long-lived server must follow an update of ca-certificates. A host
 * without a bundle: the cell trusts its own CA only.
 */
function hostRoots(): string {
  try {
    const st = fs.statSync(HOST_CA_BUNDLE);
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    if (rootsSeen?.key !== key) rootsSeen = { key, pem: fs.readFileSync(HOST_CA_BUNDLE, 'utf8') };
    return rootsSeen.pem;
  } catch {
    return '';
  }
}

function toCellEvent(e: ProxyEvent | TransparentEvent): CellEvent {
  return {
    type: e.decision === 'allowed' ? 'net.allowed' : 'net.denied',
    host: e.host,
    port: e.port,
    ip: e.ip,
    rule: e.rule,
    reason: e.reason ?? e.error ?? e.decision,
    ...(e.error ? { error: e.error } : {}),
    protocol: e.protocol,
    bytesUp: e.bytesUp,
    bytesDown: e.bytesDown,
    durationMs: e.durationMs,
  };
}
