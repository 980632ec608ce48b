// Real clients through the proxy with the environment a cell gets from proxyEnv().
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { proxyEnv } from '../../../src/net/env.js';
import { Harness } from './harness.js';

let h: Harness;
beforeEach(() => {
  h = new Harness();
});
afterEach(async () => {
  await h.cleanup();
});

/** The proxy on a loopback TCP port, standing in for init's 127.0.0.1 bridge in the cell. */
async function setup() {
  const web = await h.httpServer('127.0.0.2');
  const sec = await h.httpsServer('127.0.0.3', 'secure.test');
  const p = await h.proxy({
    allow: [`web.test:${web.port}`, `secure.test:${sec.port}`],
    hosts: { 'web.test': '127.0.0.2', 'secure.test': '127.0.0.3', 'evil.test': '127.0.0.2' },
    cidrs: ['127.0.0.2/32', '127.0.0.3/32'],
  });
  const { port } = await p.listen({ host: '127.0.0.1', port: 0 });
  const caFile = `${h.dir}/secure.test.crt`;
  const env: Record<string, string> = {
    ...proxyEnv(port),
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: h.dir,
  };
  return { web, sec, env, caFile };
}

const run = (cmd: string, args: string[], env: Record<string, string>) =>
  execa(cmd, args, { env, extendEnv: false, reject: false, timeout: 20_000 });

describe('curl (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY)', () => {
  it('fetches allowed http and https URLs and gets 403 for others', async () => {
    const { web, sec, env, caFile } = await setup();
    const plain = await run('curl', ['-sS', `http://web.test:${web.port}/c`], env);
    expect(plain.stdout).toContain('hello GET /c');
    const tls = await run(
      'curl',
      ['-sS', '--cacert', caFile, `https://secure.test:${sec.port}/t`],
      env,
    );
    expect(tls.stdout).toBe('secure /t');
    const denied = await run('curl', ['-sS', '-i', `http://evil.test:${web.port}/`], env);
    expect(denied.stdout).toMatch(/^HTTP\/1\.1 403/);
    expect(denied.stdout).toMatch(
      /X-Nanocell-Deny-Reason: nanocell: blocked connect to evil\.test:\d+ \(not in network\.allow\)/,
    );
    const tunnel = await run(
      'curl',
      ['-sS', '--cacert', caFile, `https://evil.test:${sec.port}/`],
      env,
    );
    expect(tunnel.exitCode).not.toBe(0);
    expect(tunnel.stderr).toMatch(/403/);
  });

  it('works over SOCKS5 with remote DNS (socks5h)', async () => {
    const { web, env } = await setup();
    const { HTTP_PROXY: _a, HTTPS_PROXY: _b, http_proxy: _c, https_proxy: _d, ...socksOnly } = env;
    const ok = await run('curl', ['-sS', `http://web.test:${web.port}/s`], socksOnly);
    expect(ok.stdout).toContain('hello GET /s');
    const denied = await run('curl', ['-sS', `http://evil.test:${web.port}/`], socksOnly);
    expect(denied.exitCode).toBe(97); // CURLE_PROXY: the SOCKS server refused
    const e = await h.event((x) => x.protocol === 'socks5' && x.decision === 'denied');
    expect(e.host).toBe('evil.test');
  });
});

describe('other tools honour the environment', () => {
  it('wget', async () => {
    const { web, env } = await setup();
    const r = await run('wget', ['-qO-', `http://web.test:${web.port}/w`], env);
    expect(r.stdout).toContain('hello GET /w');
  });

  it('python urllib', async () => {
    const { web, sec, env, caFile } = await setup();
    const code = [
      'import ssl, sys, urllib.request',
      `print(urllib.request.urlopen('http://web.test:${web.port}/py').read().decode())`,
      `ctx = ssl.create_default_context(cafile='${caFile}')`,
      `print(urllib.request.urlopen('https://secure.test:${sec.port}/pys', context=ctx).read().decode())`,
    ].join('\n');
    const r = await run('python3', ['-c', code], env);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('hello GET /py');
    expect(r.stdout).toContain('secure /pys');
  });

  it('git over http (http.proxy from GIT_CONFIG_*)', async () => {
    const { web, env } = await setup();
    // Only the GIT_CONFIG_* variables, so this shows git takes the proxy from them.
    const gitOnly = Object.fromEntries(
      Object.entries(env).filter(([k]) => !/proxy/i.test(k) || k.startsWith('GIT_')),
    );
    await run('git', ['ls-remote', `http://web.test:${web.port}/repo.git`], {
      ...gitOnly,
      GIT_TERMINAL_PROMPT: '0',
    });
    // The test server is not a git server; what matters is that the request went through the proxy.
    expect(web.requests.map((q) => q.url)).toContain('/repo.git/info/refs?service=git-upload-pack');
    expect((await h.event((x) => x.decision === 'allowed')).host).toBe('web.test');
  });

  it('npm reads npm_config_proxy', async () => {
    const { web, env } = await setup();
    const r = await run(
      'npm',
      [
        'view',
        'some-package',
        '--registry',
        `http://web.test:${web.port}/npm/`,
        '--fetch-retries',
        '0',
      ],
      { ...env, npm_config_cache: `${h.dir}/npm-cache`, npm_config_update_notifier: 'false' },
    );
    expect(r.exitCode).not.toBe(0); // not a registry
    expect(web.requests.map((q) => q.url)).toContain('/npm/some-package');
  });
});
