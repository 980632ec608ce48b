// What every front of the egress proxy shares: the one place a destination is decided and
// dialed (reach), the bookkeeping that turns each attempt into exactly one ProxyEvent, and the
// accounting of client connections (open count, handshake timers, closing). The fronts
// (proxyHttp, proxyConnect, proxySocks) only read their request form and answer in it.
import type { SecretBroker } from './secrets.js';
import type { TlsInterceptor } from './tlsIntercept.js';
import type net from 'node:net';
import {
  decideUnresolved,
  dial,
  systemResolver,
  type DialOptions,
  type DialResult,
  type Resolver,
} from './dial.js';
import { parseTarget, type NetRules } from './rules.js';

export interface ProxyEvent {
  /** When the attempt started (ISO 8601). */
  time: string;
  /** The destination as the client named it (normalized), '' if the request was unreadable. */
  host: string;
  port: number;
  /** The address connected to, or the resolved address that was refused. */
  ip?: string;
  decision: 'allowed' | 'denied';
  /** The rule that decided, e.g. `allow:*.npmjs.org`, `deny:evil.com`, `special:loopback`. */
  rule: string;
  /** For allowed names: what let the address through (`public-address` or `cidr:<entry>`). */
  addressRule?: string;
  reason?: string;
  /** Allowed by the rules, but the connection failed (DNS, refused, timeout). */
  error?: string;
  protocol: 'http' | 'connect' | 'socks5';
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
}

export type ProxyProtocol = ProxyEvent['protocol'];

export interface ProxyStats {
  /** Client connections open now. */
  active: number;
  /** Destination attempts so far, by decision. */
  allowed: number;
  denied: number;
  bytesUp: number;
  bytesDown: number;
}

export interface ProxyCoreOptions {
  rules: NetRules;
  onEvent: (e: ProxyEvent) => void;
  resolver?: Resolver;
  /** Called if onEvent throws (default: print to stderr); the proxy keeps running. */
  onError?: (err: unknown) => void;
  /** Time a client has to finish a handshake or request head (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Brokered secrets: CONNECTs to their hosts are intercepted, plain HTTP is checked. */
  secrets?: ProxySecrets;
}

/** The credential broker and the TLS interception of its hosts (src/net/secrets.ts). */
export interface ProxySecrets {
  broker: SecretBroker;
  interceptor: TlsInterceptor;
}

/** One destination attempt; whichever of its calls comes first emits its one event. */
interface Attempt {
  /** The destination as decided and displayed. */
  readonly host: string;
  readonly port: number;
  denied(rule: string, reason: string, ip?: string): void;
  finished(res: DialResult, bytesUp: number, bytesDown: number): void;
}

/** An upstream ready for relaying, or the failure the front answers with. */
type Reached =
  | { ok: true; socket: net.Socket; done: () => void }
  | { ok: false; failure: Extract<DialResult, { ok: false }> }
  | { ok: false; failure: undefined };

export interface ProxyCore {
  /** Starts an attempt at a destination as the request named it. */
  attempt(protocol: ProxyProtocol, host: string, port: number): Attempt;
  /** Records a request that named no usable destination (or broke a protocol rule). */
  refuse(protocol: ProxyProtocol, rule: string, reason: string): void;
  /**
   * Refuses a request that names a destination but cannot be served in its form. Its record
   * carries the decision that destination meets (rule and reason, when it is denied), so no
   * request form can name loopback or a private range without that being decided and recorded.
   */
  refuseNamed(a: Attempt, rule: string, why: string): void;
  /**
   * The one decision every request form reaches: the attempt's destination is decided by
   * name and port, resolved once, every address checked, and one of those addresses dialed
   * (src/net/dial.ts). A failure is recorded here; `failure` is undefined when the client
   * went away meanwhile. On success, `done` records the attempt with the socket's byte counts.
   */
  reach(
    a: Attempt,
    client: net.Socket,
    extra?: { onread?: net.OnReadOpts; firstBytes?: string },
  ): Promise<Reached>;
  /** Counts a new client connection and arms its handshake timer. */
  accept(client: net.Socket): void;
  /** The client finished its handshake or request head. */
  handshakeDone(client: net.Socket): void;
  /** Keeps a socket to destroy on close (clients and upstreams). */
  track(s: net.Socket): void;
  /** Destroys every tracked socket; later ones are destroyed as they come. */
  closeAll(): void;
  readonly closing: boolean;
  readonly secrets: ProxySecrets | undefined;
  stats(): ProxyStats;
  /** Replaces the rules for attempts decided from now on (the user's egress grants). */
  setRules(next: NetRules): void;
}

export function createProxyCore(opts: ProxyCoreOptions): ProxyCore {
  let rules = opts.rules;
  const resolver: Resolver = opts.resolver ?? systemResolver;
  const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
  const sockets = new Set<net.Socket>();
  const handshakeTimers = new WeakMap<net.Socket, NodeJS.Timeout>();
  const stats: ProxyStats = { active: 0, allowed: 0, denied: 0, bytesUp: 0, bytesDown: 0 };
  let closing = false;

  const emit = (e: ProxyEvent) => {
    if (e.decision === 'allowed') stats.allowed++;
    else stats.denied++;
    stats.bytesUp += e.bytesUp;
    stats.bytesDown += e.bytesDown;
    try {
      opts.onEvent(e);
    } catch (err) {
      (opts.onError ?? ((x) => console.error('nanocell proxy: event handler failed:', x)))(err);
    }
  };

  const track = (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    if (closing) s.destroy();
  };

  const handshakeDone = (s: net.Socket) => {
    const t = handshakeTimers.get(s);
    if (t) clearTimeout(t);
    handshakeTimers.delete(s);
  };

  const attempt = (protocol: ProxyProtocol, host: string, port: number) =>
    newAttempt(emit, protocol, host, port);

  return {
    attempt,
    refuse: (protocol, rule, reason) => attempt(protocol, '', 0).denied(rule, reason),
    refuseNamed(a, rule, why) {
      const d = decideUnresolved(rules, a.host, a.port);
      if (d.decision === 'denied') a.denied(d.rule, `${why}; ${d.reason ?? 'denied'}`);
      else a.denied(rule, why);
    },
    reach: (a, client, extra = {}) => reach(rules, a, client, { resolver, track, ...extra }),
    setRules: (next) => void (rules = next),
    accept(client) {
      track(client);
      stats.active++;
      client.once('close', () => {
        stats.active--;
        handshakeDone(client);
      });
      client.on('error', () => client.destroy());
      client.setNoDelay(true);
      const timer = setTimeout(() => {
        attempt('http', '', 0).denied('bad-request', 'handshake timed out');
        client.destroy();
      }, handshakeTimeoutMs);
      handshakeTimers.set(client, timer);
    },
    handshakeDone,
    track,
    closeAll() {
      closing = true;
      for (const s of sockets) s.destroy();
    },
    get closing() {
      return closing;
    },
    secrets: opts.secrets,
    stats: () => ({ ...stats }),
  };
}

async function reach(
  rules: NetRules,
  a: Attempt,
  client: net.Socket,
  dialOpts: DialOptions,
): Promise<Reached> {
  const res = await dial(rules, a.host, a.port, dialOpts);
  if (!res.ok) {
    a.finished(res, 0, 0);
    return { ok: false, failure: res };
  }
  if (client.destroyed) {
    res.socket.destroy();
    a.finished(res, 0, 0);
    return { ok: false, failure: undefined };
  }
  const socket = res.socket;
  return { ok: true, socket, done: () => a.finished(res, socket.bytesWritten, socket.bytesRead) };
}

function newAttempt(
  emit: (e: ProxyEvent) => void,
  protocol: ProxyProtocol,
  host: string,
  port: number,
): Attempt {
  const started = Date.now();
  let done = false;
  const common = () => ({
    time: new Date(started).toISOString(),
    host: displayHost(host),
    port,
    protocol,
    durationMs: Date.now() - started,
  });
  return {
    host,
    port,
    denied(rule, reason, ip) {
      if (done) return;
      done = true;
      const c = common();
      emit({
        ...c,
        ...(ip ? { ip } : {}),
        decision: 'denied',
        rule,
        reason,
        bytesUp: 0,
        bytesDown: 0,
      });
    },
    finished(res, bytesUp, bytesDown) {
      if (done) return;
      done = true;
      const base = {
        ...common(),
        ...(res.ip ? { ip: res.ip } : {}),
        decision: res.decision.decision,
        rule: res.decision.rule,
        ...(res.decision.reason ? { reason: res.decision.reason } : {}),
        bytesUp,
        bytesDown,
      };
      if (res.ok) emit({ ...base, addressRule: res.addressRule });
      else emit({ ...base, ...(res.error ? { error: res.error } : {}) });
    },
  };
}

/** The host as events show it: normalized name or canonical literal; raw text if unusable. */
function displayHost(host: string): string {
  const t = parseTarget(host);
  if (!t) return host.slice(0, 255);
  return t.kind === 'name' ? t.name : t.text;
}
