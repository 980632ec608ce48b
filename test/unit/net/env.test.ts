import { expect, it } from 'vitest';
import { proxyEnv } from '../../../src/net/env.js';

it('points every common tool at the one proxy port', () => {
  const env = proxyEnv(3128);
  for (const k of [
    'HTTP_PROXY',
    'HTTPS_PROXY',
    'http_proxy',
    'https_proxy',
    'npm_config_proxy',
    'npm_config_https_proxy',
    'PIP_PROXY',
    'GIT_CONFIG_VALUE_0',
  ]) {
    expect(env[k]).toBe('http://127.0.0.1:3128');
  }
  expect(env.ALL_PROXY).toBe('socks5h://127.0.0.1:3128');
  expect(env.all_proxy).toBe('socks5h://127.0.0.1:3128');
  expect(env.NO_PROXY).toBe('localhost,127.0.0.1,::1');
  expect(env.GIT_CONFIG_KEY_0).toBe('http.proxy');
  expect(env.GIT_CONFIG_COUNT).toBe('1');
  expect(() => proxyEnv(0)).toThrow(RangeError);
});
