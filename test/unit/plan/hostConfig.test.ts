// hostConfig: what of the host's .npmrc and pip.conf crosses into a cell. Credentials in every
// form npm and pip accept are stripped and named; the rest is carried as written.
import { describe, expect, it } from 'vitest';
import {
  HOST_CONFIG_CELL_DIR,
  planHostConfig,
  sanitizeNpmrc,
  sanitizePipConf,
} from '../../../src/plan/hostConfig.js';

describe('sanitizeNpmrc', () => {
  const npmrc = [
    'registry=https://registry.example.test/',
    '@acme:registry=https://npm.acme.test/',
    '//npm.acme.test/:_authToken=TOKEN1',
    '//registry.example.test/:_auth=BASE64',
    '_password=PW',
    'always-auth=true',
    '//other.test/:username=u',
    'key=-----BEGIN PRIVATE KEY-----',
    'https-proxy=http://proxy.corp:3128',
    'init-author-name=Dev',
    '//env.test/:_authToken=${NPM_TOKEN}',
    'metrics-registry=https://u:PW2@metrics.test/',
  ].join('\n');
  const c = sanitizeNpmrc(npmrc, '/h/.npmrc');

  it('keeps registries, scopes and settings', () => {
    expect(c.text).toContain('registry=https://registry.example.test/');
    expect(c.text).toContain('@acme:registry=https://npm.acme.test/');
    expect(c.text).toContain('always-auth=true');
    expect(c.text).toContain('init-author-name=Dev');
  });

  it('strips tokens, passwords, client keys, env references, proxies and URL userinfo', () => {
    for (const secret of [
      'TOKEN1',
      'BASE64',
      'PW',
      'PRIVATE KEY',
      'NPM_TOKEN',
      'PW2',
      'proxy.corp',
    ]) {
      expect(c.text, secret).not.toContain(secret);
    }
    expect(c.stripped).toEqual([
      '//npm.acme.test/:_authToken',
      '//registry.example.test/:_auth',
      '_password',
      '//other.test/:username',
      'key',
      'https-proxy',
      '//env.test/:_authToken',
      'metrics-registry (credentials in URL)',
    ]);
  });

  it('a cafile is copied next to the config and the path rewritten', () => {
    const ca = sanitizeNpmrc('cafile=/etc/corp/ca.pem\n', '/h/.npmrc');
    expect(ca.ca).toEqual({ from: '/etc/corp/ca.pem', name: 'npm-ca.pem' });
    expect(ca.text).toContain(`cafile=${HOST_CONFIG_CELL_DIR}/npm-ca.pem`);
  });
});

describe('sanitizePipConf', () => {
  it('drops userinfo from index URLs and credential options; keeps the rest', () => {
    const c = sanitizePipConf(
      '[global]\nindex-url = https://user:PIPPW@pypi.acme.test/simple\nextra-index-url = https://TOK@x.test/simple\ntimeout = 30\nclient-cert = /k.pem\nproxy = http://p:1\n',
      '/h/pip.conf',
    );
    expect(c.text).toContain('index-url = https://pypi.acme.test/simple');
    expect(c.text).toContain('extra-index-url = https://x.test/simple');
    expect(c.text).toContain('timeout = 30');
    expect(c.text).not.toMatch(/PIPPW|TOK@|client-cert|proxy/);
    expect(c.stripped).toEqual([
      'index-url (credentials in URL)',
      'extra-index-url (credentials in URL)',
      'client-cert',
      'proxy',
    ]);
  });
});

describe('planHostConfig', () => {
  it('points each tool at its carried file and carries the CA bundle', () => {
    const p = planHostConfig(
      ['npm', 'pip'],
      (t) => (t === 'npm' ? { from: '/h/.npmrc', text: 'cafile=/ca.pem\n' } : undefined),
      () => '-----BEGIN CERTIFICATE-----\n',
    );
    expect(p.env).toEqual({ NPM_CONFIG_USERCONFIG: `${HOST_CONFIG_CELL_DIR}/npmrc` });
    expect(p.files.map((f) => f.name)).toEqual(['npm-ca.pem', 'npmrc']);
  });

  it('refuses a CA file that holds a private key, or that is missing', () => {
    const find = () => ({ from: '/h/.npmrc', text: 'cafile=/ca.pem\n' });
    expect(() => planHostConfig(['npm'], find, () => '-----BEGIN PRIVATE KEY-----')).toThrow(
      /names the CA file \/ca.pem, which holds a private key/,
    );
    expect(() => planHostConfig(['npm'], find, () => undefined)).toThrow(/does not exist/);
  });
});
