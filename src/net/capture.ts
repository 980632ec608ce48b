// Transparent capture: the facts the supervisor and the monitor share about the cell's network
// namespace. The monitor (native/monitor/netns.c) adds a local default route on lo, loads this
// ruleset with the host's nft and hands over the sockets named here; every TCP connection the
// task opens to a non-loopback address then arrives at a transparent listener whose accepted
// socket's local address is the original destination (TPROXY, see docs/network.md).
import { accessSync, constants } from 'node:fs';
import { NanocellError } from '../util/errors.js';

/** The transparent listeners' port on 127.0.0.1 and ::1 (native/monitor/monitor.h holds it too). */
export const CAPTURE_TCP_PORT = 3129;
/** The DNS stub's port on the cell's loopback (UDP sockets; TCP arrives transparently). */
export const DNS_PORT = 53;
/** The NFLOG group the monitor reads dropped packets from (native/monitor/nflog.c). */
const NFLOG_GROUP = 7;

/** The tags the monitor gives the capture's sockets on its IPC channel. */
export const CAPTURE_HANDLES = ['transparent4', 'transparent6', 'dns4', 'dns6'] as const;
export type CaptureHandle = (typeof CAPTURE_HANDLES)[number];

/**
 * The cell's nftables ruleset. Order matters: DNS over TCP to the loopback stub is diverted
 * like any other connection (the proxy tells it apart by its destination port); the rest of
 * loopback is the cell's own; a new TCP connection to anywhere else goes to the transparent
 * listeners; every other TCP packet is delivered normally.
 * Everything else (UDP other than to loopback, ICMP, other protocols) is logged for the
 * monitor and dropped. The namespace has no device but lo, so nothing can leave it anyway:
 * these rules decide only whether a packet reaches the proxy.
 */
export function captureRuleset(): string {
  const p = CAPTURE_TCP_PORT;
  // Only a connection's first packet (SYN without ACK) needs TPROXY: the rest, in both
  // directions, is delivered to the sockets it created by the normal lookup (every address is
  // local here), so data packets cost no socket lookup in the rules.
  const syn = 'tcp flags & (syn | ack) == syn';
  return [
    'table inet nanocell {',
    '  chain capture {',
    '    type filter hook prerouting priority mangle; policy accept;',
    `    ip daddr 127.0.0.0/8 tcp dport ${DNS_PORT} ${syn} tproxy ip to 127.0.0.1:${p} accept`,
    `    ip6 daddr ::1 tcp dport ${DNS_PORT} ${syn} tproxy ip6 to [::1]:${p} accept`,
    '    ip daddr 127.0.0.0/8 accept',
    '    ip6 daddr ::1 accept',
    `    meta nfproto ipv4 ${syn} tproxy ip to 127.0.0.1:${p} accept`,
    `    meta nfproto ipv6 ${syn} tproxy ip6 to [::1]:${p} accept`,
    '    meta l4proto tcp accept',
    `    log group ${NFLOG_GROUP} drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

const NFT_CANDIDATES = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'];

/** The host's nft binary (Debian's nftables package), or undefined. */
export function findNft(): string | undefined {
  for (const p of NFT_CANDIDATES) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/**
 * The host's nft, or a refusal: with the proxy on, nanocell promises that every connection is
 * decided, so a cell it cannot capture for is refused rather than run with clients that would
 * just fail.
 */
export function requireNft(): string {
  const nft = findNft();
  if (nft) return nft;
  throw new NanocellError(
    'transparent egress capture needs the nft program (nftables), which this host lacks',
    'install it (Debian/Ubuntu: apt-get install nftables) or run with networking off',
    'RUNTIME',
  );
}

/** A packet the capture rules dropped, as the monitor reports it (native/monitor/nflog.c). */
export function droppedPacketEvent(ev: { [k: string]: unknown }): {
  type: 'net.denied';
  host: string;
  port: number;
  ip: string | undefined;
  rule: string;
  reason: string;
  protocol: string;
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
} {
  const none = { bytesUp: 0, bytesDown: 0, durationMs: 0 };
  if (ev.type === 'net.dropped.summary') {
    return {
      type: 'net.denied',
      host: '',
      port: 0,
      ip: undefined,
      rule: 'capture:dropped',
      reason: `${Number(ev.count) || 0} more dropped packets (UDP, ICMP, other) past the event cap`,
      protocol: 'packet',
      ...none,
    };
  }
  const proto = typeof ev.proto === 'string' ? ev.proto : 'other';
  const port = Math.min(65535, Math.max(0, Math.trunc(Number(ev.dport) || 0)));
  const dst = typeof ev.dst === 'string' ? ev.dst : '';
  const dns = proto === 'udp' && port === DNS_PORT;
  return {
    type: 'net.denied',
    host: dst,
    port,
    ip: dst || undefined,
    rule: `capture:${proto}`,
    reason: dns
      ? 'a DNS query to an outside resolver was dropped: the cell resolves through its stub at 127.0.0.1'
      : `${proto.toUpperCase()} is not forwarded out of the cell; the packet was dropped`,
    protocol: proto,
    ...none,
  };
}
