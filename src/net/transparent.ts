// Connections captured in the cell's network namespace (see capture.ts). The accepted socket's
// local address is where the task was connecting: a fake address from the DNS stub (which
// names the host), a real IP literal (decided by the CIDR rules, like any IP literal), or the
// loopback stub's port 53 (DNS over TCP). The first bytes are read before anything is dialed:
// a TLS ClientHello's SNI and a plain HTTP Host header must name the same host as the fake
// address, so domain fronting and SNI spoofing are refused, not just logged. The decision and
// the upstream connection are the explicit proxy's own (dial).
import net from 'node:net';
import { dial, type DialResult, type Resolver } from './dial.js';
import { serveDnsTcp, type DnsStubContext } from './dnsStub.js';
import { FakeAddressTable } from './fakeAddrs.js';
import { disagreement, readFirstBytes } from './agree.js';
import { DownstreamCopier, tunnel } from './proxyRelay.js';
import type { NetRules } from './rules.js';
import { DNS_PORT } from './capture.js';
import { deniedResponse } from './proxyReplies.js';
import { egressDenialLine } from '../policy/denialText.js';

export interface TransparentEvent {
  time: string;
  /** The name the fake address stands for, or the IP literal connected to. */
  host: string;
  port: number;
  ip?: string;
  decision: 'allowed' | 'denied';
  rule: string;
  reason?: string;
  error?: string;
  /** transparent-tls, transparent-http or transparent-tcp: what the first bytes were. */
  protocol: string;
  /** What the task's own bytes claimed, when they claimed something. */
  sni?: string;
  hostHeader?: string;
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
}

export interface TransparentContext {
  rules: NetRules;
  table: FakeAddressTable;
  dns: DnsStubContext;
  resolver: Resolver;
  onEvent: (e: TransparentEvent) => void;
  /** Every socket the proxy opens or accepts, so close() can end them. */
  track: (s: net.Socket) => void;
}

export function serveTransparent(server: net.Server, ctx: TransparentContext): void {
  (server as net.Server & { allowHalfOpen: boolean }).allowHalfOpen = true;
  server.on('connection', (client: net.Socket) => onConnection(client, ctx));
}

function unmapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function onConnection(client: net.Socket, ctx: TransparentContext) {
  ctx.track(client);
  client.on('error', () => client.destroy());
  client.setNoDelay(true);
  const dst = unmapped(client.localAddress ?? '');
  const port = client.localPort ?? 0;
  const loopback = dst === '::1' || dst.startsWith('127.');
  if (loopback && port === DNS_PORT) return serveDnsTcp(client, Buffer.alloc(0), ctx.dns);

  const started = Date.now();
  const base = { time: new Date(started).toISOString(), port };
  const deny = (host: string, rule: string, reason: string, extra: Partial<TransparentEvent>) => {
    ctx.onEvent({
      ...base,
      host,
      decision: 'denied',
      rule,
      reason,
      protocol: 'transparent-tcp',
      bytesUp: 0,
      bytesDown: 0,
      durationMs: Date.now() - started,
      ...extra,
    });
    refuse(client, extra.protocol, egressDenialLine({ host, port, rule, reason }));
  };
  if (loopback)
    return deny(dst, 'capture:loopback', 'the transparent listener is not a destination', {});
  const fake = FakeAddressTable.inFakeRange(dst);
  const name = fake ? ctx.table.nameOf(dst) : undefined;
  if (fake && name === undefined) {
    return deny(dst, 'capture:unknown-fake-address', `${dst} was not given out by the DNS stub`, {
      ip: dst,
    });
  }
  const host = name ?? dst;
  readFirstBytes(client, Buffer.alloc(0), (first, seen) => {
    const claims = {
      protocol: `transparent-${seen.kind === 'tls' ? 'tls' : seen.kind === 'http' ? 'http' : 'tcp'}`,
      ...(seen.kind === 'tls' && seen.sni !== undefined ? { sni: seen.sni.slice(0, 255) } : {}),
      ...(seen.kind === 'http' && seen.host !== undefined
        ? { hostHeader: seen.host.slice(0, 255) }
        : {}),
    };
    const mismatch = name !== undefined ? disagreement(name, port, seen) : undefined;
    if (mismatch) return deny(host, mismatch.rule, mismatch.reason, claims);
    const down = new DownstreamCopier();
    void dial(ctx.rules, host, port, {
      resolver: ctx.resolver,
      track: ctx.track,
      onread: down.onread,
      ...(first.length ? { firstBytes: first.toString('latin1') } : {}),
    }).then((res) => relay(client, res, down, host, base, started, claims, ctx));
  });
}

/**
 * Ends a refused connection. A plain HTTP client gets a 403 that says why (as from the explicit
 * proxy); anything else is closed, since no other protocol has a place for the reason.
 */
function refuse(client: net.Socket, protocol: string | undefined, why: string) {
  if (protocol !== 'transparent-http' || !client.writable) return void client.destroy();
  client.end(deniedResponse(why));
  client.destroySoon();
}

function relay(
  client: net.Socket,
  res: DialResult,
  down: DownstreamCopier,
  host: string,
  base: { time: string; port: number },
  started: number,
  claims: { protocol: string; sni?: string; hostHeader?: string },
  ctx: TransparentContext,
) {
  const event = (bytesUp: number, bytesDown: number): TransparentEvent => ({
    ...base,
    host,
    ...(res.ip ? { ip: res.ip } : {}),
    decision: res.decision.decision,
    rule: res.decision.rule,
    ...(res.decision.reason ? { reason: res.decision.reason } : {}),
    ...(!res.ok && res.error ? { error: res.error } : {}),
    ...claims,
    bytesUp,
    bytesDown,
    durationMs: Date.now() - started,
  });
  if (!res.ok || client.destroyed) {
    if (res.ok) res.socket.destroy();
    ctx.onEvent(event(0, 0));
    if (!res.ok)
      refuse(
        client,
        claims.protocol,
        res.failure === 'denied'
          ? egressDenialLine({
              host,
              port: base.port,
              rule: res.decision.rule,
              reason: res.decision.reason ?? '',
            })
          : `nanocell could not reach the destination: ${res.error ?? res.failure}`,
      );
    else client.destroy();
    return;
  }
  // The explicit proxy's relay: the upstream is read into one reusable buffer (proxy.ts).
  const up = res.socket;
  tunnel(client, up, down, () => ctx.onEvent(event(up.bytesWritten, up.bytesRead)));
}
