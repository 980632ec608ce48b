// Every notation of an address reads as that address, so it meets the same decision.
import { describe, expect, it } from 'vitest';
import { decideUnresolved } from '../../../src/net/dial.js';
import { formatIp, parseLegacyIpv4 } from '../../../src/net/ip.js';
import { compileNetRules, parseTarget } from '../../../src/net/rules.js';

const text = (s: string) => {
  const ip = parseLegacyIpv4(s);
  return ip && formatIp(ip);
};

describe('parseLegacyIpv4 reads what resolvers and URL parsers read', () => {
  it('reads decimal, octal, hex and short forms as the address they name', () => {
    for (const [form, want] of [
      ['2130706433', '127.0.0.1'],
      ['0x7f000001', '127.0.0.1'],
      ['0X7F000001', '127.0.0.1'],
      ['017700000001', '127.0.0.1'],
      ['0177.0.0.1', '127.0.0.1'],
      ['0x7f.0.0.1', '127.0.0.1'],
      ['127.1', '127.0.0.1'],
      ['127.0.1', '127.0.0.1'],
      ['127.000.000.001', '127.0.0.1'],
      ['127.0.0.1.', '127.0.0.1'],
      ['10.0x10.1', '10.16.0.1'],
      ['0xa9.0xfe.0xa9.0xfe', '169.254.169.254'],
      ['192.168.0x1', '192.168.0.1'],
      ['0', '0.0.0.0'],
      ['0x', '0.0.0.0'],
    ] as const) {
      expect(text(form), form).toBe(want);
    }
  });

  it('refuses what is no address: too many parts, out of range, bad digits, names', () => {
    for (const form of [
      '1.2.3.4.5',
      '256.1',
      '1.2.3.256',
      '4294967296',
      '0x100000000',
      '08.0.0.1',
      '0x7g',
      '1..1',
      '',
      '.',
      'example.com',
      '127.0.0.1x',
      '-1',
    ]) {
      expect(text(form), form).toBeUndefined();
    }
  });

  it('makes parseTarget read a notation as the canonical literal', () => {
    expect(parseTarget('127.1')).toMatchObject({ kind: 'ip', text: '127.0.0.1' });
    expect(parseTarget('0x7f000001')).toMatchObject({ kind: 'ip', text: '127.0.0.1' });
    expect(parseTarget('[::ffff:127.0.0.1]')).toMatchObject({
      kind: 'ip',
      text: '::ffff:127.0.0.1',
    });
    expect(parseTarget('registry.npmjs.org')).toMatchObject({ kind: 'name' });
    // Brackets hold IPv6 only.
    expect(parseTarget('[127.1]')).toBeUndefined();
  });
});

describe('decideUnresolved', () => {
  const rules = compileNetRules({
    allow: ['web.test:8080'],
    deny: [],
    cidrs: ['127.0.0.0/8', '10.1.0.0/16:5432'],
    hosts: {},
  });

  it('decides a literal by address as well as by port, whatever its notation', () => {
    // 127.0.0.0/8 covers loopback, so the literal passes; the refusals below are by port/range.
    expect(decideUnresolved(rules, '127.1', 443)).toMatchObject({ decision: 'allowed' });
    expect(decideUnresolved(rules, '0x0a010001', 22)).toMatchObject({
      decision: 'denied',
      rule: 'ip-literal',
    });
    const none = compileNetRules({ allow: [], deny: [], cidrs: [], hosts: {} });
    for (const form of ['127.1', '2130706433', '0177.0.0.1', '[::ffff:127.0.0.1]', '10.1']) {
      expect(decideUnresolved(none, form, 80), form).toMatchObject({ decision: 'denied' });
    }
  });

  it('decides a name by name and port only (no lookup)', () => {
    expect(decideUnresolved(rules, 'web.test', 8080)).toMatchObject({
      decision: 'allowed',
      rule: 'allow:web.test:8080',
    });
    expect(decideUnresolved(rules, 'evil.test', 80)).toMatchObject({
      decision: 'denied',
      rule: 'default-deny',
    });
  });
});
