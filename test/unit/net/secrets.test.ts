// The broker's decisions, pure: the placeholder's shape, and which requests get the value.
import { describe, expect, it } from 'vitest';
import { makePlaceholder, SecretBroker, type SecretEvent } from '../../../src/net/secrets.js';
import { secretEntry } from '../../../src/policy/secrets.js';

const VALUE = 'sk-ant-api03-AbCdEf0123456789xyzXYZ_tail-99';

function broker(extra: Partial<Parameters<typeof secretEntry>[0]> = {}) {
  const events: SecretEvent[] = [];
  const entry = secretEntry({
    name: 'KEY',
    from: { env: 'X' },
    hosts: ['api.example.com/v1/'],
    header: 'x-api-key',
    ...extra,
  });
  const b = new SecretBroker(
    [{ ...entry, value: VALUE, placeholder: makePlaceholder(VALUE) }],
    (e) => events.push(e),
  );
  return { b, events, ph: b.env().KEY! };
}

describe('makePlaceholder', () => {
  it('keeps length, prefix and character classes, and differs from the value', () => {
    const p = makePlaceholder(VALUE);
    expect(p).toHaveLength(VALUE.length);
    expect(p.startsWith('sk-ant-api03-')).toBe(true);
    expect(p).not.toBe(VALUE);
    for (let i = 0; i < VALUE.length; i++) {
      const cls = (c: string) =>
        /[0-9]/.test(c) ? 'd' : /[a-z]/.test(c) ? 'l' : /[A-Z]/.test(c) ? 'u' : c;
      expect(cls(p[i]!)).toBe(cls(VALUE[i]!));
    }
    expect(makePlaceholder(VALUE)).not.toBe(p);
  });
});

describe('SecretBroker.rewrite', () => {
  const req = (over: object, ph: string) => ({
    host: 'api.example.com',
    method: 'POST',
    target: '/v1/messages',
    rawHeaders: ['Host', 'api.example.com', 'x-api-key', ph],
    tls: true,
    ...over,
  });

  it('puts the value in on the bound host, path and header over TLS', () => {
    const { b, ph } = broker();
    const r = b.rewrite(req({}, ph));
    expect(r).toEqual({
      ok: true,
      rawHeaders: ['Host', 'api.example.com', 'x-api-key', VALUE],
      used: ['KEY'],
    });
  });

  it('refuses and records every other place the placeholder goes', () => {
    const { b, ph, events } = broker();
    const cases = [
      req({ host: 'evil.example.com' }, ph),
      req({ target: '/v2/x' }, ph),
      req({ tls: false }, ph),
      req({ rawHeaders: ['authorization', `Bearer ${ph}`] }, ph),
      req({ target: `/v1/x?k=${ph}` }, ph),
    ];
    for (const c of cases) expect(b.rewrite(c).ok).toBe(false);
    expect(events.map((e) => e.type)).toEqual(Array(5).fill('secret.misuse'));
    expect(JSON.stringify(events)).not.toContain(VALUE);
  });

  it('honours a scheme (Authorization: Bearer) and plain HTTP only when the entry allows it', () => {
    const { b, ph } = broker({ header: 'Authorization: Bearer', allowPlainHttp: true });
    expect(
      b.rewrite(req({ tls: false, rawHeaders: ['Authorization', `Bearer ${ph}`] }, ph)),
    ).toMatchObject({
      ok: true,
      rawHeaders: ['Authorization', `Bearer ${VALUE}`],
    });
    expect(b.rewrite(req({ rawHeaders: ['Authorization', `Basic ${ph}`] }, ph)).ok).toBe(false);
  });

  it('leaves requests without a placeholder alone', () => {
    const { b } = broker();
    expect(b.rewrite(req({ host: 'other.example' }, 'nothing'))).toMatchObject({
      ok: true,
      used: [],
    });
  });
});
