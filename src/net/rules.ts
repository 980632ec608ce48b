// Egress rules (pure): compile the policy's network section once, then decide each
// destination twice — by name and port before resolution (decideHost), and by address after
// resolution (checkAddress). Both must allow a connection.
import type { Policy } from '../policy/defaults.js';
import { PolicyError } from '../util/errors.js';
import {
  cidrContains,
  formatCidr,
  formatIp,
  low32,
  parseCidr,
  parseIp,
  parseLegacyIpv4,
  type Cidr,
  type Ip,
} from './ip.js';
import {
  DEFAULT_PORTS,
  normalizeHostName,
  parseHostPattern,
  parsePort,
  patternMatchesName,
  portsInclude,
  type HostPattern,
  type PortSet,
} from './patterns.js';
import { specialRangeOf } from './specialRanges.js';

/** An explicit address range: a network.cidrs entry, or an address pattern in network.allow. */
interface CidrRule {
  cidr: Cidr;
  /** Ports an IP-literal destination in the range may use. */
  ports: PortSet;
  /** The rule name used in decisions: `cidr:<entry>` or `allow:<entry>`. */
  rule: string;
}

/** Compiled network rules of one cell. */
export interface NetRules {
  readonly allow: readonly HostPattern[];
  readonly deny: readonly HostPattern[];
  readonly cidrs: readonly CidrRule[];
  /** network.hosts: normalized name → the only address that name resolves to. */
  readonly pins: ReadonlyMap<string, string>;
}

/**
 * Whether a cell with these rules needs its egress proxy. A cidrs entry alone allows
 * IP-literal destinations in its range, so it needs the proxy too.
 */
export function hasEgress(rules: {
  allow: readonly unknown[];
  cidrs: readonly unknown[];
}): boolean {
  return rules.allow.length > 0 || rules.cidrs.length > 0;
}

export interface Decision {
  decision: 'allowed' | 'denied';
  /** What decided: `allow:<entry>`, `deny:<entry>`, `cidr:<entry>`, `special:<range>`, ... */
  rule: string;
  /** Why a destination was denied, in one line for people. */
  reason?: string;
}

/** A host as it appears in a request: a normalized name or a canonical IP literal. */
export type Target = { kind: 'name'; name: string } | { kind: 'ip'; ip: Ip; text: string };

const allowed = (rule: string): Decision => ({ decision: 'allowed', rule });
const denied = (rule: string, reason: string): Decision => ({ decision: 'denied', rule, reason });

export function compileNetRules(
  policyNetwork: Policy['network'],
  extraAllow: string[] = [],
): NetRules {
  const allow = [
    ...policyNetwork.allow.map((e) => parseHostPattern(e, 'network.allow')),
    ...extraAllow.map((e) => parseHostPattern(e, '--allow-net')),
  ];
  const deny = policyNetwork.deny.map((e) => parseHostPattern(e, 'network.deny'));
  const cidrs: CidrRule[] = [
    ...policyNetwork.cidrs.map(parseCidrRule),
    // An address in network.allow is the user naming that one address: it is an explicit
    // range of one, like a /32 or /128 in network.cidrs, limited to the entry's ports.
    ...allow.flatMap((p) =>
      p.kind === 'address'
        ? [
            {
              cidr: { family: p.ip.family, base: p.ip.value, prefix: p.ip.family === 4 ? 32 : 128 },
              ports: p.ports,
              rule: `allow:${p.source}`,
            },
          ]
        : [],
    ),
  ];
  const rules: NetRules = { allow, deny, cidrs, pins: new Map() };
  const pins = new Map<string, string>();
  for (const [name, addr] of Object.entries(policyNetwork.hosts)) {
    const key = normalizeHostName(name);
    if (!key || name.includes('*')) {
      throw new PolicyError(
        `network.hosts: ${JSON.stringify(name)} is not a host name`,
        'pin plain names, e.g. registry.test: 127.0.0.2',
      );
    }
    const ip = parseIp(addr.startsWith('[') && addr.endsWith(']') ? addr.slice(1, -1) : addr);
    if (!ip) {
      throw new PolicyError(
        `network.hosts: ${name}: ${JSON.stringify(addr)} is not an IP address`,
        'pin a name to one IPv4 or IPv6 address',
      );
    }
    const text = formatIp(ip);
    // A pin says where a name points, not that the address may be reached: an address in a
    // refused range must also be listed in network.cidrs. Checked here so a policy that could
    // never work fails at load, not at the first connection.
    const verdict = checkAddress(rules, text);
    if (verdict.decision === 'denied') {
      throw new PolicyError(
        `network.hosts: ${name} → ${text}: ${verdict.reason}`,
        `add ${text}/${ip.family === 4 ? 32 : 128} to network.cidrs to allow it`,
      );
    }
    pins.set(key, text);
  }
  return { allow, deny, cidrs, pins };
}

function parseCidrRule(entry: string): CidrRule {
  const fail = (why: string): never => {
    throw new PolicyError(
      `network.cidrs: ${JSON.stringify(entry)} ${why}`,
      'use 10.0.0.0/8, 10.1.2.3/32:5432, fd00::/8 or [fd00::/8]:5432',
    );
  };
  if (typeof entry !== 'string' || entry === '') return fail('is empty');
  let rangeText = entry;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(entry);
  const v4WithPort = /^([0-9./]+):([^:]*)$/.exec(entry);
  if (bracketed) [, rangeText = '', portText] = bracketed;
  else if (v4WithPort) [, rangeText = '', portText] = v4WithPort;
  const cidr = parseCidr(rangeText);
  if (!cidr) return fail('is not an IP range (address/prefix)');
  if (bracketed && cidr.family !== 6) return fail('has brackets around an IPv4 range');
  if (cidr.prefix === 0) return fail('covers every address; list the ranges the task needs');
  let ports: PortSet = DEFAULT_PORTS;
  if (portText !== undefined) {
    const port = parsePort(portText);
    if (port === undefined)
      return fail(`has a bad port ${JSON.stringify(portText)}; ports are 1-65535`);
    ports = [port];
  }
  return { cidr, ports, rule: `cidr:${entry}` };
}

// Decisions are pure functions of immutable inputs, and one request asks for them several
// times (the proxy's display name, the Host header check, the dial): remember recent answers.
// Bounded so that a client cycling through names cannot grow the proxy's memory.
const MEMO_ENTRIES = 4096;

function remember<K, V>(memo: Map<K, V>, key: K, value: V): V {
  if (memo.size >= MEMO_ENTRIES) memo.clear();
  memo.set(key, value);
  return value;
}

const targets = new Map<string, Readonly<Target> | undefined>();
const hostDecisions = new WeakMap<NetRules, Map<string, Readonly<Decision>>>();
const addressDecisions = new WeakMap<NetRules, Map<string, Readonly<Decision>>>();

function memoOf(memos: WeakMap<NetRules, Map<string, Readonly<Decision>>>, rules: NetRules) {
  let memo = memos.get(rules);
  if (!memo) memos.set(rules, (memo = new Map()));
  return memo;
}

/**
 * Reads a request's host: `[v6]`, a v4/v6 literal (IPv4 in any notation a resolver accepts,
 * read as the address it names) or a DNS name. Undefined if unusable.
 */
export function parseTarget(host: string): Readonly<Target> | undefined {
  if (targets.has(host)) return targets.get(host);
  const t = parseTargetUncached(host);
  return remember(targets, host, t && Object.freeze(t));
}

function parseTargetUncached(host: string): Target | undefined {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const ip = parseIp(bare) ?? (bare === host ? parseLegacyIpv4(host) : undefined);
  if (ip) return { kind: 'ip', ip, text: formatIp(ip) };
  if (bare !== host) return undefined;
  const name = normalizeHostName(host);
  return name ? { kind: 'name', name } : undefined;
}

/** The decision by name and port, before any resolution. Deny entries beat allow entries. */
export function decideHost(rules: NetRules, host: string, port: number): Readonly<Decision> {
  const memo = memoOf(hostDecisions, rules);
  const key = `${port} ${host}`;
  return memo.get(key) ?? remember(memo, key, Object.freeze(decideHostUncached(rules, host, port)));
}

function decideHostUncached(rules: NetRules, host: string, port: number): Decision {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return denied('invalid-port', `port ${port} is not a TCP port`);
  }
  const target = parseTarget(host);
  if (!target) return denied('invalid-host', `${JSON.stringify(host)} is not a valid host name`);

  if (target.kind === 'ip') {
    const v4 = embeddedMapped(target.ip);
    const d = rules.deny.find(
      (p) =>
        p.kind === 'address' &&
        portsInclude(p.ports, port) &&
        (sameIp(p.ip, target.ip) || (v4 !== undefined && sameIp(p.ip, v4))),
    );
    if (d)
      return denied(`deny:${d.source}`, `${target.text} is denied by network.deny "${d.source}"`);
    const c = rules.cidrs.find(
      (r) => cidrContains(r.cidr, target.ip) && portsInclude(r.ports, port),
    );
    if (c) return allowed(c.rule);
    return denied(
      'ip-literal',
      `IP-literal destination ${target.text}:${port} is not covered by network.cidrs`,
    );
  }

  const { name } = target;
  const d = rules.deny.find((p) => patternMatchesName(p, name) && portsInclude(p.ports, port));
  if (d) return denied(`deny:${d.source}`, `${name} is denied by network.deny "${d.source}"`);
  const a = rules.allow.find((p) => patternMatchesName(p, name) && portsInclude(p.ports, port));
  if (a) return allowed(`allow:${a.source}`);
  if (rules.allow.some((p) => patternMatchesName(p, name))) {
    return denied('default-deny', `port ${port} is not allowed for ${name} by network.allow`);
  }
  return denied('default-deny', `${name} is not in network.allow`);
}

/**
 * The decision for one resolved (or literal) address. Special-purpose ranges (loopback,
 * private, metadata, ...) are refused unless an explicit range covers the address; an
 * IPv4-mapped or similar address needs an IPv6 range and its embedded IPv4 address is checked
 * as well. The port was already decided by name, so CIDR ports do not apply here.
 */
export function checkAddress(rules: NetRules, ip: string): Readonly<Decision> {
  const memo = memoOf(addressDecisions, rules);
  return memo.get(ip) ?? remember(memo, ip, Object.freeze(checkAddressUncached(rules, ip)));
}

function checkAddressUncached(rules: NetRules, ip: string): Decision {
  const addr = parseIp(ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip);
  if (!addr) return denied('invalid-address', `${JSON.stringify(ip)} is not an IP address`);
  const text = formatIp(addr);
  const special = specialRangeOf(addr);
  // A metadata service hands out cloud credentials: a broad range such as 169.254.0.0/16 does
  // not unlock it, only an entry naming exactly that address.
  const cover = rules.cidrs.find(
    (r) =>
      cidrContains(r.cidr, addr) &&
      (special?.name !== 'cloud-metadata' || r.cidr.prefix === (addr.family === 4 ? 32 : 128)),
  );
  if (special?.embedsV4) {
    if (!cover) {
      const inner = special.embedded
        ? ` and embeds ${formatIp(low32(addr))} (${special.embedded})`
        : '';
      return denied(`special:${special.name}`, `${text} is in the ${special.name} range${inner}`);
    }
    const inner = low32(addr);
    const innerSpecial = specialRangeOf(inner);
    if (innerSpecial && checkAddress(rules, formatIp(inner)).decision === 'denied') {
      return denied(
        `special:${innerSpecial.name}`,
        `${text} embeds ${formatIp(inner)}, which is in the ${innerSpecial.name} range`,
      );
    }
    return allowed(cover.rule);
  }
  if (cover) return allowed(cover.rule);
  if (special) {
    return denied(
      `special:${special.name}`,
      `${text} is in the ${special.name} range (refused unless network.cidrs lists it)`,
    );
  }
  return allowed('public-address');
}

function embeddedMapped(ip: Ip): Ip | undefined {
  return ip.family === 6 && ip.value >> 32n === 0xffffn ? low32(ip) : undefined;
}

function sameIp(a: Ip, b: Ip): boolean {
  return a.family === b.family && a.value === b.value;
}

/** One line per rule, for reports and `--explain`. */
export function describeRules(rules: NetRules): string[] {
  const ports = (p: PortSet) => (p === 'any' ? 'any port' : `ports ${p.join(', ')}`);
  return [
    ...rules.deny.map((p) => `deny ${p.source} (${ports(p.ports)})`),
    ...rules.allow
      .filter((p) => p.kind !== 'address')
      .map((p) => `allow ${p.source} (${ports(p.ports)})`),
    ...rules.cidrs.map(
      (c) => `range ${formatCidr(c.cidr)} (${c.rule}; literals on ${ports(c.ports)})`,
    ),
    ...[...rules.pins].map(([n, a]) => `pin ${n} → ${a}`),
  ];
}
