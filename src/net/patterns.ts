// The grammar of network.allow / network.deny entries (pure):
//   name[:port]        exact host, e.g. registry.npmjs.org or registry.npmjs.org:8443
//   *.name[:port]      any subdomain of name, never name itself
//   [ipv6][:port]      one IPv6 address; a.b.c.d[:port] likewise for one IPv4 address
// Without a port an allow entry means ports 80 and 443; a deny entry means every port.
import { domainToASCII } from 'node:url';
import { PolicyError } from '../util/errors.js';
import { parseIp, type Ip } from './ip.js';
import { isPublicSuffix } from './publicSuffixes.js';

export const DEFAULT_PORTS: readonly number[] = [80, 443];

/** Ports an entry covers: a list, or every port. */
export type PortSet = readonly number[] | 'any';

export type HostPattern =
  | { kind: 'exact'; name: string; ports: PortSet; source: string }
  | { kind: 'wildcard'; suffix: string; ports: PortSet; source: string }
  | { kind: 'address'; ip: Ip; ports: PortSet; source: string };

export type PatternField = 'network.allow' | 'network.deny' | '--allow-net';

const FIX = 'use example.com, *.example.com or [2001:db8::1], each with an optional :port';

/** Parses one entry; throws PolicyError naming the field and entry. */
export function parseHostPattern(entry: unknown, field: PatternField): HostPattern {
  const fail = (why: string, fix = FIX): never => {
    throw new PolicyError(`${field}: ${JSON.stringify(entry)} ${why}`, fix);
  };
  if (typeof entry !== 'string') return fail('is not a string');
  if (entry === '') return fail('is empty');
  if (entry.length > 300) return fail('is too long for a host name');
  if (/[\s\p{Cc}]/u.test(entry)) return fail('contains whitespace or control characters');
  if (entry.includes('://'))
    return fail('has a scheme; give only the host', `write it without the scheme, e.g. ${FIX}`);
  if (/[/?#\\]/.test(entry)) return fail('has a path or query; give only the host');
  if (entry.includes('@')) return fail('has user info; give only the host');

  let hostPart: string;
  let portPart: string | undefined;
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close < 0) return fail('has an unclosed [');
    hostPart = entry.slice(1, close);
    const rest = entry.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return fail('has text after ]');
    portPart = rest === '' ? undefined : rest.slice(1);
    const ip = parseIp(hostPart);
    if (!ip || ip.family !== 6) return fail('does not hold an IPv6 address in brackets');
    return { kind: 'address', ip, ports: parsePorts(portPart, field, fail), source: entry };
  }
  const colons = entry.split(':').length - 1;
  if (colons > 1)
    return fail('looks like an IPv6 address; write it in brackets, e.g. [2001:db8::1]:443');
  [hostPart, portPart] = colons === 1 ? (entry.split(':') as [string, string]) : [entry, undefined];
  const ports = parsePorts(portPart, field, fail);

  if (hostPart === '*') return fail('matches every host; list the hosts the task needs');
  const ip = parseIp(hostPart);
  if (ip) return { kind: 'address', ip, ports, source: entry };

  if (hostPart.startsWith('*.')) {
    const suffix = normalizeHostName(hostPart.slice(2));
    if (hostPart.slice(2).includes('*')) return fail('may have a wildcard only as the first label');
    if (!suffix) return fail('is not a valid host name pattern');
    if (isPublicSuffix(suffix)) {
      return fail(
        `covers a whole public suffix (.${suffix}); name a domain under it, e.g. *.example.${suffix}`,
      );
    }
    return { kind: 'wildcard', suffix, ports, source: entry };
  }
  if (hostPart.includes('*'))
    return fail('may have a wildcard only as a whole first label, as in *.example.com');
  const name = normalizeHostName(hostPart);
  if (!name) return fail('is not a valid host name');
  return { kind: 'exact', name, ports, source: entry };
}

function parsePorts(
  text: string | undefined,
  field: PatternField,
  fail: (why: string) => never,
): PortSet {
  if (text === undefined) return field === 'network.deny' ? 'any' : DEFAULT_PORTS;
  const port = parsePort(text);
  if (port === undefined) return fail(`has a bad port ${JSON.stringify(text)}; ports are 1-65535`);
  return [port];
}

/** A decimal port 1-65535, or undefined. */
export function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * The canonical form of a DNS host name: lowercase ASCII (IDNA), without the root dot.
 * Undefined if it is not a usable host name. The last label may not look like a number,
 * because resolvers read `2130706433` or `0x7f.1` as IPv4 addresses.
 */
export function normalizeHostName(text: string): string | undefined {
  if (text === '' || text.length > 254) return undefined;
  let name = text.endsWith('.') ? text.slice(0, -1) : text;
  // Reject characters that IDNA mapping would silently drop or fold (e.g. soft hyphens, full
  // stops in other scripts), so that what the user wrote is what is matched.
  if (!/^[\p{L}\p{N}\p{M}._-]+$/u.test(name)) return undefined;
  name = domainToASCII(name);
  if (!name || name.length > 253) return undefined;
  const labels = name.split('.');
  if (!labels.every((l) => LABEL.test(l))) return undefined;
  if (/^(?:\d+|0x[0-9a-f]*)$/.test(labels[labels.length - 1]!)) return undefined;
  return name;
}

export function portsInclude(ports: PortSet, port: number): boolean {
  return ports === 'any' || ports.includes(port);
}

/** Does a host-name pattern match this (normalized) name? Address patterns never match names. */
export function patternMatchesName(p: HostPattern, name: string): boolean {
  if (p.kind === 'exact') return p.name === name;
  if (p.kind === 'wildcard') return name.endsWith(`.${p.suffix}`);
  return false;
}
