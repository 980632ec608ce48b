// The per-cell table of fake addresses. The DNS stub answers an allowed name with an address
// from a private range that is not routed anywhere (198.18.0.0/15, RFC 2544's benchmarking
// range, and a ULA /64); a later connection to that address is known to mean that name, so
// the proxy never has to trust a name the task sends in the connection itself.
import { formatIp, parseIp } from './ip.js';

const V4_BASE = parseIp('198.18.0.0')!.value;
/** 198.18.0.0/15 less the network and broadcast addresses. */
const V4_SIZE = 2n ** 17n - 2n;
const V6_BASE = parseIp('fd6e:616e:6f63::')!.value;
/** Names one cell may look up; past this the stub answers SERVFAIL. */
const MAX_NAMES = 65_536;

export const FAKE_V4_CIDR = '198.18.0.0/15';
export const FAKE_V6_CIDR = 'fd6e:616e:6f63::/64';

interface Entry {
  v4: string;
  v6: string;
}

export class FakeAddressTable {
  private readonly byName = new Map<string, Entry>();
  private readonly byAddress = new Map<string, string>();

  /** The fake addresses of a (normalized) name, given on first use; undefined when full. */
  addressesOf(name: string): Entry | undefined {
    const known = this.byName.get(name);
    if (known) return known;
    const n = BigInt(this.byName.size + 1);
    if (this.byName.size >= MAX_NAMES || n > V4_SIZE) return undefined;
    const e = {
      v4: formatIp({ family: 4, value: V4_BASE + n }),
      v6: formatIp({ family: 6, value: V6_BASE + n }),
    };
    this.byName.set(name, e);
    this.byAddress.set(e.v4, name);
    this.byAddress.set(e.v6, name);
    return e;
  }

  /** The name a fake address stands for; undefined for any other address. */
  nameOf(address: string): string | undefined {
    const ip = parseIp(address);
    if (!ip) return undefined;
    // A v4 client on a dual-stack socket shows as ::ffff:198.18.x.y.
    const v4 = ip.family === 6 && ip.value >> 32n === 0xffffn ? ip.value & 0xffffffffn : undefined;
    const text = formatIp(v4 !== undefined ? { family: 4, value: v4 } : ip);
    return this.byAddress.get(text);
  }

  /** Whether an address is in either fake range (known to this table or not). */
  static inFakeRange(address: string): boolean {
    const ip = parseIp(address);
    if (!ip) return false;
    if (ip.family === 4) return ip.value >> 17n === V4_BASE >> 17n;
    return ip.value >> 64n === V6_BASE >> 64n;
  }
}
