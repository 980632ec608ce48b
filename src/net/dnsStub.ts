// The cell's DNS stub, on its loopback port 53 (UDP sockets the monitor made in the cell's
// network namespace; DNS over TCP arrives through the transparent listener). A name the policy
// allows gets fake A/AAAA answers from the cell's FakeAddressTable, so the connection that
// follows is known to mean that name; the real lookup happens only when the proxy dials it, in
// the supervisor. Any other name gets NXDOMAIN and a `dns.denied` event, so a name used to
// carry data out (DNS exfiltration) shows in the report. Nothing here asks a real resolver.
import type dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { normalizeHostName, patternMatchesName } from './patterns.js';
import { decideHost, type Decision, type NetRules } from './rules.js';
import type { FakeAddressTable } from './fakeAddrs.js';

export interface DnsDeniedEvent {
  time: string;
  /** The name as asked (case kept), cut to 255 characters. */
  name: string;
  qtype: string;
  rule: string;
  reason: string;
  /** 'udp' or 'tcp'. */
  transport: string;
}

export interface DnsStubContext {
  rules: NetRules;
  table: FakeAddressTable;
  onDenied: (e: DnsDeniedEvent) => void;
}

/** Fake answers are short-lived: a resolver cache outliving the cell's table is harmless. */
const TTL = 60;
const NXDOMAIN = 3;
const SERVFAIL = 2;
const FORMERR = 1;
const FLAGS = dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE;

/**
 * A name resolves when some port is allowed for it: the stub cannot know the port, and the
 * connection's own port is decided again by the proxy, so this is only the name half of
 * decideHost.
 */
export function decideName(rules: NetRules, name: string): Decision {
  const ports = new Set<number>();
  for (const p of rules.allow) {
    if (!patternMatchesName(p, name)) continue;
    for (const port of p.ports === 'any' ? [443] : p.ports) ports.add(port);
  }
  if (ports.size === 0) return decideHost(rules, name, 443);
  let last: Decision | undefined;
  for (const port of ports) {
    last = decideHost(rules, name, port);
    if (last.decision === 'allowed') return last;
  }
  return last!;
}

/** The response to one query message; undefined when it is not worth an answer. */
export function answerQuery(
  msg: Buffer,
  ctx: DnsStubContext,
  transport: 'udp' | 'tcp',
): Buffer | undefined {
  let q: dnsPacket.Packet;
  try {
    q = dnsPacket.decode(msg);
  } catch {
    return undefined;
  }
  if (q.type !== 'query') return undefined;
  const questions = q.questions ?? [];
  const reply = (rcode: number, answers: dnsPacket.Answer[] = []) =>
    dnsPacket.encode({ type: 'response', id: q.id ?? 0, flags: FLAGS | rcode, questions, answers });
  if (questions.length !== 1) return reply(FORMERR);
  const question = questions[0]!;
  // As asked, case kept: data smuggled out in a name is often case-sensitive (base64).
  const asked = question.name.slice(0, 255);
  const name = normalizeHostName(asked.toLowerCase());
  const decision: Decision = name
    ? decideName(ctx.rules, name)
    : { decision: 'denied', rule: 'invalid-host', reason: 'not a valid host name' };
  if (decision.decision === 'denied') {
    ctx.onDenied({
      time: new Date().toISOString(),
      name: asked,
      qtype: String(question.type),
      rule: decision.rule,
      reason: decision.reason ?? 'denied',
      transport,
    });
    return reply(NXDOMAIN);
  }
  const fake = ctx.table.addressesOf(name!);
  if (!fake) return reply(SERVFAIL);
  // Other record types of an allowed name (MX, TXT, HTTPS, ...) have no answer: NODATA.
  if (question.type === 'A')
    return reply(0, [{ type: 'A', name: question.name, ttl: TTL, data: fake.v4 }]);
  if (question.type === 'AAAA')
    return reply(0, [{ type: 'AAAA', name: question.name, ttl: TTL, data: fake.v6 }]);
  return reply(0);
}

/** Serves the stub on the UDP sockets the monitor handed over. */
export function serveDnsUdp(socket: dgram.Socket, ctx: DnsStubContext): void {
  socket.on('message', (msg, rinfo) => {
    const res = answerQuery(msg, ctx, 'udp');
    if (res) socket.send(res, rinfo.port, rinfo.address);
  });
  socket.on('error', () => undefined);
}

/** DNS over TCP (RFC 7766): two-byte length-prefixed messages, answered in order. */
export function serveDnsTcp(
  socket: import('node:net').Socket,
  first: Buffer,
  ctx: DnsStubContext,
): void {
  let buf = first;
  const drain = () => {
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) return;
      const res = answerQuery(buf.subarray(2, 2 + len), ctx, 'tcp');
      buf = buf.subarray(2 + len);
      if (!res) {
        socket.destroy();
        return;
      }
      const head = Buffer.alloc(2);
      head.writeUInt16BE(res.length);
      socket.write(Buffer.concat([head, res]));
    }
  };
  socket.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    if (buf.length > 70_000) socket.destroy();
    else drain();
  });
  socket.on('end', () => socket.end());
  drain();
}
