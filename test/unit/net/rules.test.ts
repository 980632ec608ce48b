import { describe, expect, it } from 'vitest';
import { PolicyError } from '../../../src/util/errors.js';
import {
  checkAddress,
  compileNetRules,
  decideHost,
  describeRules,
} from '../../../src/net/rules.js';
import type { Policy } from '../../../src/policy/defaults.js';

const net = (n: Partial<Policy['network']>): Policy['network'] => ({
  allow: [],
  deny: [],
  cidrs: [],
  hosts: {},
  ...n,
});
const rules = (n: Partial<Policy['network']>, extra?: string[]) => compileNetRules(net(n), extra);

describe('compileNetRules rejects bad entries with a PolicyError naming the entry', () => {
  const bad: [string, RegExp][] = [
    ['*', /matches every host/],
    ['*.com', /public suffix/],
    ['*.co.uk', /public suffix/],
    ['*.com.au', /public suffix/],
    ['*.github.io', /public suffix/],
    ['', /is empty/],
    ['https://example.com', /scheme/],
    ['example.com/path', /path/],
    ['example.com?q=1', /path or query/],
    ['user@example.com', /user info/],
    ['example.com:0', /bad port/],
    ['example.com:65536', /bad port/],
    ['example.com:http', /bad port/],
    ['example.com:', /bad port/],
    ['a.*.example.com', /wildcard/],
    ['foo*.example.com', /wildcard/],
    ['*.*.example.com', /wildcard/],
    ['2001:db8::1', /brackets/],
    ['[2001:db8::1', /unclosed/],
    ['[1.2.3.4]', /IPv6/],
    ['[2001:db8::1]x', /after \]/],
    ['exa mple.com', /whitespace/],
    ['-bad.example.com', /not a valid host name/],
    ['example.123', /not a valid host name/],
    ['a..b', /not a valid host name/],
  ];
  for (const [entry, why] of bad) {
    it(`rejects ${JSON.stringify(entry)}`, () => {
      let err: unknown;
      try {
        rules({ allow: [entry] });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PolicyError);
      expect((err as Error).message).toContain(`network.allow: ${JSON.stringify(entry)}`);
      expect((err as Error).message).toMatch(why);
    });
  }

  it('names the field for deny entries and --allow-net additions', () => {
    expect(() => rules({ deny: ['*'] })).toThrow(/network\.deny: "\*"/);
    expect(() => rules({}, ['*.com'])).toThrow(/--allow-net: "\*\.com"/);
  });

  it('rejects bad CIDRs, a /0 and bad pins', () => {
    expect(() => rules({ cidrs: ['10.0.0.0/33'] })).toThrow(/network\.cidrs: "10\.0\.0\.0\/33"/);
    expect(() => rules({ cidrs: ['0.0.0.0/0'] })).toThrow(/every address/);
    expect(() => rules({ cidrs: ['::/0'] })).toThrow(/every address/);
    expect(() => rules({ cidrs: ['10.0.0.0/8:99999'] })).toThrow(/bad port/);
    expect(() => rules({ cidrs: ['[10.0.0.0/8]'] })).toThrow(PolicyError);
    expect(() => rules({ cidrs: ['example.com'] })).toThrow(/not an IP range/);
    expect(() => rules({ hosts: { 'a.test': 'nope' } })).toThrow(/not an IP address/);
    expect(() => rules({ hosts: { '*.a.test': '8.8.8.8' } })).toThrow(/not a host name/);
  });

  it('refuses a pin into a refused range unless network.cidrs covers it', () => {
    expect(() => rules({ hosts: { 'web.test': '127.0.0.2' } })).toThrow(
      /network\.hosts: web\.test → 127\.0\.0\.2: .*loopback/,
    );
    const r = rules({ hosts: { 'web.test': '127.0.0.2' }, cidrs: ['127.0.0.2/32'] });
    expect(r.pins.get('web.test')).toBe('127.0.0.2');
  });
});

describe('decideHost', () => {
  it('allows exact names on the default ports 80 and 443 only', () => {
    const r = rules({ allow: ['example.com'] });
    expect(decideHost(r, 'example.com', 443)).toEqual({
      decision: 'allowed',
      rule: 'allow:example.com',
    });
    expect(decideHost(r, 'example.com', 80).decision).toBe('allowed');
    const d = decideHost(r, 'example.com', 8443);
    expect(d.decision).toBe('denied');
    expect(d.reason).toMatch(/port 8443 is not allowed for example\.com/);
    expect(decideHost(r, 'www.example.com', 443).decision).toBe('denied');
    expect(decideHost(r, 'example.org', 443).reason).toMatch(/not in network\.allow/);
  });

  it('normalizes case, the root dot and IDN', () => {
    const r = rules({ allow: ['example.com', 'bücher.de'] });
    expect(decideHost(r, 'EXAMPLE.com.', 443).decision).toBe('allowed');
    expect(decideHost(r, 'xn--bcher-kva.de', 443).decision).toBe('allowed');
    expect(decideHost(r, 'BÜCHER.de', 443).decision).toBe('allowed');
  });

  it('a wildcard matches subdomains at any depth but never the domain itself', () => {
    const r = rules({ allow: ['*.example.com'] });
    expect(decideHost(r, 'a.example.com', 443).decision).toBe('allowed');
    expect(decideHost(r, 'a.b.example.com', 443).decision).toBe('allowed');
    expect(decideHost(r, 'example.com', 443).decision).toBe('denied');
    expect(decideHost(r, 'badexample.com', 443).decision).toBe('denied');
    expect(decideHost(r, 'example.com.evil.net', 443).decision).toBe('denied');
  });

  it('explicit ports replace the defaults', () => {
    const r = rules({ allow: ['git.example.com:8443'] });
    expect(decideHost(r, 'git.example.com', 8443).decision).toBe('allowed');
    expect(decideHost(r, 'git.example.com', 443).decision).toBe('denied');
  });

  it('deny beats allow, and a deny without a port covers every port', () => {
    const r = rules({ allow: ['*.example.com', 'x.example.com:22'], deny: ['x.example.com'] });
    expect(decideHost(r, 'y.example.com', 443).decision).toBe('allowed');
    for (const port of [443, 80, 22]) {
      const d = decideHost(r, 'x.example.com', port);
      expect(d).toMatchObject({ decision: 'denied', rule: 'deny:x.example.com' });
    }
    const r2 = rules({ allow: ['*.example.com'], deny: ['*.internal.example.com:443'] });
    expect(decideHost(r2, 'a.internal.example.com', 443).rule).toBe(
      'deny:*.internal.example.com:443',
    );
    expect(decideHost(r2, 'a.internal.example.com', 80).decision).toBe('allowed');
  });

  it('--allow-net entries add to network.allow and still lose to deny', () => {
    const r = rules({ deny: ['b.test'] }, ['a.test', 'b.test']);
    expect(decideHost(r, 'a.test', 443).rule).toBe('allow:a.test');
    expect(decideHost(r, 'b.test', 443).rule).toBe('deny:b.test');
  });

  it('IP-literal destinations need a CIDR rule; name patterns never allow them', () => {
    const r = rules({
      allow: ['*.example.com', 'example.com'],
      cidrs: ['203.0.113.0/24', '[2001:db8::/32]:8443'],
    });
    expect(decideHost(r, '198.51.100.7', 443)).toMatchObject({
      decision: 'denied',
      rule: 'ip-literal',
    });
    expect(decideHost(r, '203.0.113.9', 443).rule).toBe('cidr:203.0.113.0/24');
    expect(decideHost(r, '203.0.113.9', 22).decision).toBe('denied');
    expect(decideHost(r, '[2001:db8::5]', 8443).rule).toBe('cidr:[2001:db8::/32]:8443');
    expect(decideHost(r, '2001:db8::5', 443).decision).toBe('denied');
  });

  it('an address pattern in allow is a one-address rule limited to its ports', () => {
    const r = rules({ allow: ['[2001:db8::1]', '192.0.2.10:8080'] });
    expect(decideHost(r, '[2001:db8::1]', 443).rule).toBe('allow:[2001:db8::1]');
    expect(decideHost(r, '[2001:DB8:0::1]', 80).decision).toBe('allowed');
    expect(decideHost(r, '[2001:db8::2]', 443).decision).toBe('denied');
    expect(decideHost(r, '192.0.2.10', 8080).decision).toBe('allowed');
    expect(decideHost(r, '192.0.2.10', 80).decision).toBe('denied');
    // ... and the named address passes the address check although it is a documentation range.
    expect(checkAddress(r, '2001:db8::1').decision).toBe('allowed');
    expect(checkAddress(r, '2001:db8::2').decision).toBe('denied');
  });

  it('deny address patterns beat CIDRs, also through the IPv4-mapped form', () => {
    const r = rules({ cidrs: ['192.0.2.0/24', '::ffff:0:0/96'], deny: ['192.0.2.66'] });
    expect(decideHost(r, '192.0.2.66', 443).rule).toBe('deny:192.0.2.66');
    expect(decideHost(r, '[::ffff:192.0.2.66]', 443).rule).toBe('deny:192.0.2.66');
    expect(decideHost(r, '192.0.2.65', 443).decision).toBe('allowed');
  });

  it('refuses names that resolvers would read as numbers, and bad ports', () => {
    const r = rules({ allow: ['example.com'] });
    for (const h of [
      '2130706433',
      '0x7f.1',
      '127.1',
      '0177.0.0.1',
      '',
      '[example.com]',
      'a b',
      'ex%61mple.com',
    ]) {
      expect(decideHost(r, h, 443)).toMatchObject({ decision: 'denied' });
    }
    expect(decideHost(r, 'example.com', 0).rule).toBe('invalid-port');
    expect(decideHost(r, 'example.com', 70000).rule).toBe('invalid-port');
    expect(decideHost(r, 'example.com', 1.5).rule).toBe('invalid-port');
  });
});

describe('checkAddress refuses special ranges unless a CIDR covers them', () => {
  const r = rules({});
  const refused: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['169.254.169.254', 'cloud-metadata'],
    ['169.254.1.1', 'link-local'],
    ['0.0.0.0', 'this-network'],
    ['0.1.2.3', 'this-network'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['198.18.0.1', 'benchmarking'],
    ['192.0.0.8', 'ietf-reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['fd00:ec2::254', 'cloud-metadata'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'ipv4-mapped'],
    ['::ffff:7f00:1', 'ipv4-mapped'],
    ['::ffff:8.8.8.8', 'ipv4-mapped'],
    ['::ffff:169.254.169.254', 'ipv4-mapped'],
    ['::127.0.0.1', 'ipv4-compatible'],
    ['64:ff9b::10.0.0.1', 'nat64'],
    ['64:ff9b::8.8.8.8', 'nat64'],
    ['64:ff9b:1::1', 'nat64'],
    ['2002:7f00:1::1', '6to4'],
    ['2001::1', 'teredo'],
    ['2001:db8::1', 'documentation'],
  ];
  for (const [ip, range] of refused) {
    it(`refuses ${ip} (${range})`, () => {
      const d = checkAddress(r, ip);
      expect(d.decision).toBe('denied');
      expect(d.rule).toBe(`special:${range}`);
      expect(d.reason).toBeTruthy();
    });
  }

  it('names the metadata address and the embedded address of a mapped one', () => {
    expect(checkAddress(r, '169.254.169.254').reason).toMatch(
      /169\.254\.169\.254 is in the cloud-metadata range/,
    );
    expect(checkAddress(r, '::ffff:127.0.0.1').reason).toMatch(/embeds 127\.0\.0\.1 \(loopback\)/);
  });

  it('allows public unicast addresses', () => {
    for (const ip of [
      '8.8.8.8',
      '1.1.1.1',
      '93.184.216.34',
      '2606:4700:4700::1111',
      '2a00:1450::1',
    ]) {
      expect(checkAddress(r, ip)).toEqual({ decision: 'allowed', rule: 'public-address' });
    }
  });

  it('rejects things that are not addresses', () => {
    for (const ip of ['example.com', '1.2.3', 'fe80::1%eth0', '', '01.2.3.4']) {
      expect(checkAddress(r, ip).rule).toBe('invalid-address');
    }
  });

  it('a covering CIDR lifts the refusal, for every port', () => {
    const c = rules({ cidrs: ['10.0.0.0/8', '127.0.0.2/32', 'fd00::/8'] });
    expect(checkAddress(c, '10.9.8.7').rule).toBe('cidr:10.0.0.0/8');
    expect(checkAddress(c, '127.0.0.2').rule).toBe('cidr:127.0.0.2/32');
    expect(checkAddress(c, '127.0.0.3').decision).toBe('denied');
    expect(checkAddress(c, 'fd00::1').rule).toBe('cidr:fd00::/8');
  });

  it('a broad range never unlocks the metadata address; naming it exactly does', () => {
    expect(checkAddress(rules({ cidrs: ['169.254.0.0/16'] }), '169.254.169.254').decision).toBe(
      'denied',
    );
    expect(checkAddress(rules({ cidrs: ['169.254.0.0/16'] }), '169.254.1.1').decision).toBe(
      'allowed',
    );
    expect(checkAddress(rules({ cidrs: ['169.254.169.254/32'] }), '169.254.169.254').decision).toBe(
      'allowed',
    );
  });

  it('an IPv4-mapped address needs an IPv6 range, and then its IPv4 address is checked too', () => {
    expect(checkAddress(rules({ cidrs: ['127.0.0.0/8'] }), '::ffff:127.0.0.1').decision).toBe(
      'denied',
    );
    const v6only = rules({ cidrs: ['::ffff:0:0/96'] });
    expect(checkAddress(v6only, '::ffff:8.8.8.8').decision).toBe('allowed');
    expect(checkAddress(v6only, '::ffff:127.0.0.1')).toMatchObject({
      decision: 'denied',
      rule: 'special:loopback',
    });
    const both = rules({ cidrs: ['::ffff:0:0/96', '127.0.0.1/32'] });
    expect(checkAddress(both, '::ffff:127.0.0.1').decision).toBe('allowed');
  });
});

it('describeRules lists every rule', () => {
  const r = rules({
    allow: ['a.test'],
    deny: ['b.test'],
    cidrs: ['10.0.0.0/8'],
    hosts: { 'c.test': '10.1.1.1' },
  });
  expect(describeRules(r)).toEqual([
    'deny b.test (any port)',
    'allow a.test (ports 80, 443)',
    'range 10.0.0.0/8 (cidr:10.0.0.0/8; literals on ports 80, 443)',
    'pin c.test → 10.1.1.1',
  ]);
});
