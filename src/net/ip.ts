// IP addresses as numbers, so that range checks are plain integer comparisons with no
// library quirks (node's BlockList, for one, silently matches IPv4 rules against IPv4-mapped
// IPv6 addresses, which would hide which rule decided).
import { isIPv4, isIPv6 } from 'node:net';

type Family = 4 | 6;

export interface Ip {
  family: Family;
  value: bigint;
}

export interface Cidr {
  family: Family;
  base: bigint;
  prefix: number;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

/** Parses a bare IPv4 or IPv6 address (no brackets, no zone); undefined if it is not one. */
export function parseIp(text: string): Ip | undefined {
  if (isIPv4(text)) return { family: 4, value: parseV4(text) };
  // Zone ids (fe80::1%eth0) name an interface of the host: never a valid destination.
  if (text.includes('%') || !isIPv6(text)) return undefined;
  return { family: 6, value: parseV6(text) };
}

function parseV4(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function parseV6(text: string): bigint {
  let s = text.toLowerCase();
  // A trailing dotted quad (::ffff:1.2.3.4) stands for the last two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const v4 = parseV4(dotted[1]!);
    s =
      s.slice(0, -dotted[1]!.length) + `${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const fill = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(fill).fill('0'), ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run compressed). */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((ip.value >> s) & 0xffn)).join('.');
  }
  if (ip.value >> 32n === 0xffffn)
    return `::ffff:${formatIp({ family: 4, value: ip.value & 0xffffffffn })}`;
  const groups = Array.from({ length: 8 }, (_, i) =>
    Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn),
  );
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

/** Parses `addr/prefix`; a bare address is a single-address range. Undefined if invalid. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(addrText);
  if (!ip) return undefined;
  const bits = BITS[ip.family];
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    if (prefix > bits) return undefined;
  }
  return { family: ip.family, base: ip.value & mask(ip.family, prefix), prefix };
}

/** Network masks by family and prefix length, computed once: range checks run per request. */
const MASKS: Record<Family, readonly bigint[]> = {
  4: Array.from({ length: 33 }, (_, p) => maskOf(32, p)),
  6: Array.from({ length: 129 }, (_, p) => maskOf(128, p)),
};

function maskOf(bits: number, prefix: number): bigint {
  return ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefix)) - 1n);
}

function mask(family: Family, prefix: number): bigint {
  return MASKS[family][prefix]!;
}

export function cidrContains(cidr: Cidr, ip: Ip): boolean {
  return cidr.family === ip.family && (ip.value & mask(cidr.family, cidr.prefix)) === cidr.base;
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.base })}/${cidr.prefix}`;
}

/** The IPv4 address held in the low 32 bits of an IPv6 address (mapped, NAT64, ...). */
export function low32(ip: Ip): Ip {
  return { family: 4, value: ip.value & 0xffffffffn };
}

/**
 * Reads the IPv4 notations that resolvers (inet_aton) and the WHATWG URL parser accept besides
 * the dotted quad: one to four parts, each decimal, octal (leading 0) or hex (0x), the last
 * filling the remaining bytes (`127.1`, `2130706433`, `0x7f.1`, `0177.0.0.1`), and a trailing
 * dot. Undefined if the text is not one. The proxy reads these as the address they name, so a
 * notation cannot decide differently from the address it stands for.
 */
export function parseLegacyIpv4(text: string): Ip | undefined {
  const parts = text.split('.');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  if (parts.length > 4) return undefined;
  const numbers: number[] = [];
  for (const p of parts) {
    const n = legacyPart(p);
    if (n === undefined) return undefined;
    numbers.push(n);
  }
  const last = numbers.pop()!;
  if (numbers.some((n) => n > 255) || last >= 256 ** (4 - numbers.length)) return undefined;
  const value = numbers.reduce((acc, n, i) => acc + n * 256 ** (3 - i), 0) + last;
  return { family: 4, value: BigInt(value) };
}

function legacyPart(p: string): number | undefined {
  if (/^0x[0-9a-f]*$/i.test(p)) return p.length === 2 ? 0 : parseInt(p.slice(2), 16);
  if (/^0[0-7]+$/.test(p)) return parseInt(p.slice(1), 8);
  if (/^(?:0|[1-9][0-9]*)$/.test(p)) return Number(p);
  return undefined;
}
