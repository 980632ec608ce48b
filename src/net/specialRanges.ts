// Address ranges a cell must not reach through the proxy unless the policy names them in
// network.cidrs: the host itself, the networks behind it, the cloud metadata service, and
// addresses that are not unicast destinations on the public internet. Sources: the IANA IPv4
// and IPv6 Special-Purpose Address Registries (RFC 6890 and its updates).
import { cidrContains, low32, parseCidr, type Cidr, type Ip } from './ip.js';

interface SpecialRange {
  /** Short rule name used in decisions and events, e.g. `special:loopback`. */
  name: string;
  cidr: Cidr;
  /** For IPv6 ranges that embed an IPv4 address in their low 32 bits. */
  embedsV4?: boolean;
}

function range(name: string, text: string, embedsV4 = false): SpecialRange {
  const cidr = parseCidr(text);
  if (!cidr) throw new Error(`bad built-in range ${text}`);
  return { name, cidr, ...(embedsV4 ? { embedsV4 } : {}) };
}

// Order matters: the first match names the refusal, so narrow ranges come before the ranges
// that contain them (the metadata address before link-local, ::1 before ::/96).
const SPECIAL_RANGES: readonly SpecialRange[] = [
  range('cloud-metadata', '169.254.169.254/32'),
  range('cloud-metadata', '169.254.170.2/32'), // AWS ECS task metadata
  range('cloud-metadata', '100.100.100.200/32'), // Alibaba Cloud metadata
  range('cloud-metadata', 'fd00:ec2::254/128'), // AWS IMDS over IPv6
  range('this-network', '0.0.0.0/8'),
  range('private', '10.0.0.0/8'),
  range('cgnat', '100.64.0.0/10'),
  range('loopback', '127.0.0.0/8'),
  range('link-local', '169.254.0.0/16'),
  range('private', '172.16.0.0/12'),
  range('ietf-reserved', '192.0.0.0/24'),
  range('documentation', '192.0.2.0/24'),
  range('6to4-relay', '192.88.99.0/24'),
  range('private', '192.168.0.0/16'),
  range('benchmarking', '198.18.0.0/15'),
  range('documentation', '198.51.100.0/24'),
  range('documentation', '203.0.113.0/24'),
  range('multicast', '224.0.0.0/4'),
  range('broadcast', '255.255.255.255/32'),
  range('reserved', '240.0.0.0/4'),
  range('unspecified', '::/128'),
  range('loopback', '::1/128'),
  range('ipv4-mapped', '::ffff:0:0/96', true),
  range('ipv4-compatible', '::/96', true),
  range('ipv4-translated', '::ffff:0:0:0/96', true),
  range('nat64', '64:ff9b::/96', true),
  range('nat64', '64:ff9b:1::/48'),
  range('discard-only', '100::/64'),
  range('teredo', '2001::/32'),
  range('ietf-reserved', '2001::/23'),
  range('documentation', '2001:db8::/32'),
  range('6to4', '2002::/16'),
  range('documentation', '3fff::/20'),
  range('srv6-sid', '5f00::/16'),
  range('unique-local', 'fc00::/7'),
  range('link-local', 'fe80::/10'),
  range('site-local', 'fec0::/10'),
  range('multicast', 'ff00::/8'),
];

export interface SpecialMatch {
  name: string;
  /** The range holds an IPv4 address in its low 32 bits (IPv4-mapped, NAT64, ...). */
  embedsV4?: boolean;
  /** For such ranges: the special range the embedded IPv4 address is in, if any. */
  embedded?: string;
}

/** The first special range containing ip, or undefined for an ordinary public unicast address. */
export function specialRangeOf(ip: Ip): SpecialMatch | undefined {
  const hit = SPECIAL_RANGES.find((r) => cidrContains(r.cidr, ip));
  if (!hit) return undefined;
  if (!hit.embedsV4) return { name: hit.name };
  const inner = SPECIAL_RANGES.find((r) => cidrContains(r.cidr, low32(ip)));
  return { name: hit.name, embedsV4: true, ...(inner ? { embedded: inner.name } : {}) };
}
