// Deciding and opening one upstream connection. The name is resolved once, every address is
// checked, and the connection goes to one of exactly those checked addresses: nothing is
// looked up again by name, so a DNS answer that changes between check and use (rebinding)
// cannot steer the connection elsewhere.
import { promises as dns } from 'node:dns';
import net from 'node:net';
import { checkAddress, decideHost, parseTarget, type Decision, type NetRules } from './rules.js';

export type Resolver = (host: string) => Promise<string[]>;

/** How a failed dial maps onto protocol errors (SOCKS5 reply codes, HTTP statuses). */
export type DialFailure = 'denied' | 'unresolvable' | 'unreachable' | 'refused' | 'timeout';

export type DialResult =
  | { ok: true; socket: net.Socket; ip: string; decision: Decision; addressRule: string }
  | { ok: false; failure: DialFailure; decision: Decision; ip?: string; error?: string };

export interface DialOptions {
  resolver: Resolver;
  resolveTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Called with each upstream socket as soon as it exists, so the proxy can close it. */
  track?: (s: net.Socket) => void;
  /** Read the upstream into the caller's buffer (net's `onread`): the socket emits no 'data'. */
  onread?: net.OnReadOpts;
  /**
   * Bytes for the upstream, queued as soon as the socket exists (the address is already
   * checked), so they leave with the handshake instead of a loop turn after it.
   */
  firstBytes?: string;
}

/** At most this many addresses of one name are checked and tried. */
const MAX_ADDRESSES = 16;

export const systemResolver: Resolver = async (host) =>
  (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * What dial decides before any lookup: by name and port, and for an address literal by its
 * address too. For a request the proxy refuses in its form (origin-form, https:// absolute-form,
 * an upgrade): its record carries what the destination it named would have met.
 */
export function decideUnresolved(rules: NetRules, host: string, port: number): Decision {
  const decision = decideHost(rules, host, port);
  const target = parseTarget(host);
  if (decision.decision === 'denied' || target?.kind !== 'ip') return decision;
  const verdict = checkAddress(rules, target.text);
  return verdict.decision === 'denied' ? verdict : decision;
}

export async function dial(
  rules: NetRules,
  host: string,
  port: number,
  opts: DialOptions,
): Promise<DialResult> {
  const decision = decideHost(rules, host, port);
  if (decision.decision === 'denied') return { ok: false, failure: 'denied', decision };
  const target = parseTarget(host)!;

  let addresses: string[];
  if (target.kind === 'ip') {
    addresses = [target.text];
  } else {
    const pinned = rules.pins.get(target.name);
    if (pinned) {
      addresses = [pinned];
    } else {
      try {
        addresses = await withTimeout(
          opts.resolver(target.name),
          opts.resolveTimeoutMs ?? 5000,
          'DNS lookup timed out',
        );
      } catch (e) {
        return { ok: false, failure: 'unresolvable', decision, error: errorText(e) };
      }
    }
  }
  addresses = addresses.slice(0, MAX_ADDRESSES);
  if (addresses.length === 0) {
    return { ok: false, failure: 'unresolvable', decision, error: 'no addresses' };
  }
  // One refused address refuses the name: a name that mixes public and private answers is
  // either misconfigured or an attack, and picking the "good" half hides both.
  const checked: { ip: string; rule: string }[] = [];
  for (const ip of addresses) {
    const verdict = checkAddress(rules, ip);
    if (verdict.decision === 'denied')
      return { ok: false, failure: 'denied', decision: verdict, ip };
    checked.push({ ip: canonical(ip), rule: verdict.rule });
  }

  let last: { failure: DialFailure; error: string; ip: string } | undefined;
  for (const { ip, rule } of checked) {
    const res = await connectTo(ip, port, opts.connectTimeoutMs ?? 10_000, opts);
    if ('socket' in res) return { ok: true, socket: res.socket, ip, decision, addressRule: rule };
    last = { ...res, ip };
  }
  return { ok: false, decision, ...last! };
}

function canonical(ip: string): string {
  const t = parseTarget(ip);
  return t?.kind === 'ip' ? t.text : ip;
}

function connectTo(
  ip: string,
  port: number,
  timeoutMs: number,
  { track, onread, firstBytes }: Pick<DialOptions, 'track' | 'onread' | 'firstBytes'>,
): Promise<{ socket: net.Socket } | { failure: DialFailure; error: string }> {
  return new Promise((resolve) => {
    // An IP literal as host: node connects to it directly, with no lookup.
    const socket = net.connect({
      host: ip,
      port,
      allowHalfOpen: true,
      noDelay: true,
      ...(onread ? { onread } : {}),
    });
    track?.(socket);
    if (firstBytes !== undefined) socket.write(firstBytes, 'latin1');
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ failure: 'timeout', error: `connect to ${ip}:${port} timed out` });
    }, timeoutMs);
    const onError = (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      const failure: DialFailure = e.code === 'ECONNREFUSED' ? 'refused' : 'unreachable';
      resolve({ failure, error: `${e.code ?? 'error'} connecting to ${ip}:${port}` });
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      // Later errors end in 'close', which the proxy handles; none may go unhandled.
      socket.on('error', () => {});
      resolve({ socket });
    });
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function errorText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code ? `${err.code}` : String(err?.message ?? e);
}
