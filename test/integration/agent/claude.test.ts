// `nanocell agent claude`, for real: Claude Code installed from the npm registry into a user
// prefix (~/.npm-global) of a home the test owns, found there by its preset, started in a cell
// with `-p`. Its API host, api.anthropic.com, is pinned through network.hosts to a loopback
// TLS stand-in whose CA only nanocell trusts (NODE_EXTRA_CA_CERTS), so the real key goes from
// the proxy to the stand-in while the cell holds a placeholder, and nothing else is reachable.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox, nanocell, spawnNanocell, type Sandbox } from '../../helpers/cells.js';
import { CLAUDE_CODE, installAgentCli } from '../../helpers/agentCli.js';
import { drivePty } from '../../helpers/ptyDriver.js';

const CANARY = `sk-ant-api03-${'Qx7'.repeat(12)}AGENTc4n4ry${Date.now()}AA`;
const API = 'api.anthropic.com';
// A loopback address of its own, so port 443 is free whatever else runs on this machine.
const ADDR = `127.${100 + (process.pid % 100)}.${Math.floor(process.pid / 100) % 250}.9`;
const ANSWER = 'hello from the stand-in';

let sb: Sandbox;
let dir = '';
let home = '';
let caFile = '';
/** The user's policy: it extends the preset only to pin the API host to the stand-in. */
let pinPolicy = '';
let server: https.Server | undefined;
const seen: { method: string; url: string; key: string | undefined }[] = [];

/** An Anthropic Messages API answer, streamed (server-sent events) when the request asks. */
function answer(body: string, res: import('node:http').ServerResponse) {
  const req = JSON.parse(body || '{}') as { stream?: boolean; model?: string };
  const message = {
    id: 'msg_standin',
    type: 'message',
    role: 'assistant',
    model: req.model ?? 'claude-stand-in',
    content: [] as unknown[],
    stop_reason: null as string | null,
    stop_sequence: null,
    usage: { input_tokens: 1, output_tokens: 1 },
  };
  if (!req.stream) {
    res.setHeader('content-type', 'application/json');
    const done = { ...message, content: [{ type: 'text', text: ANSWER }], stop_reason: 'end_turn' };
    return void res.end(JSON.stringify(done));
  }
  res.setHeader('content-type', 'text/event-stream');
  const events: [string, unknown][] = [
    ['message_start', { type: 'message_start', message }],
    [
      'content_block_start',
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    ],
    [
      'content_block_delta',
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ANSWER } },
    ],
    ['content_block_stop', { type: 'content_block_stop', index: 0 }],
    [
      'message_delta',
      {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: 5 },
      },
    ],
    ['message_stop', { type: 'message_stop' }],
  ];
  res.end(events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join(''));
}

beforeAll(async () => {
  sb = makeSandbox({ 'README.md': 'a project\n' });
  // Host mounts may not sit under /tmp (the cell's own tmpfs), so the home is elsewhere.
  dir = fs.mkdtempSync(path.join('/var/tmp', 'nanocell-agent-'));
  home = path.join(dir, 'home');
  fs.mkdirSync(home);
  installAgentCli(home, CLAUDE_CODE);
  pinPolicy = path.join(dir, 'policy.yaml');
  fs.writeFileSync(
    pinPolicy,
    JSON.stringify({ network: { hosts: { [API]: ADDR }, cidrs: [`${ADDR}/32`] } }),
  );
  const key = path.join(dir, 'up.key');
  caFile = path.join(dir, 'up.crt');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
      .concat(['-keyout', key, '-out', caFile, '-days', '1', '-subj', `/CN=${API}`])
      .concat(['-addext', `subjectAltName=DNS:${API}`]),
    { stdio: 'ignore' },
  );
  server = https.createServer(
    { key: fs.readFileSync(key), cert: fs.readFileSync(caFile) },
    (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          key: req.headers['x-api-key'] as string,
        });
        if (req.method === 'POST' && req.url?.startsWith('/v1/messages')) return answer(body, res);
        res.setHeader('content-type', 'application/json');
        res.end('{}');
      });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server!.once('error', reject);
    server!.listen(443, ADDR, resolve);
  });
}, 360_000);

afterAll(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  sb?.cleanup();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The test's home as the invoking user's, the canary as the host's key, the stand-in's CA. */
function agentEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    ANTHROPIC_API_KEY: CANARY,
    NODE_EXTRA_CA_CERTS: caFile,
    // Not the sudo caller's home: the test's own.
    SUDO_USER: '',
  };
  return env;
}

function run(args: string[]) {
  return new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawnNanocell(args, { stateRoot: sb.stateRoot, env: agentEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    child.on('close', (code) => resolve({ status: code ?? 137, stdout, stderr }));
  });
}

function filesContaining(root: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.readFileSync(p).includes(needle)) hits.push(p);
    }
  };
  walk(root);
  return hits;
}

function events(taskId: string): Record<string, unknown>[] {
  const logs = nanocell(['logs', taskId, '--json'], { stateRoot: sb.stateRoot }).stdout;
  expect(logs).not.toContain(CANARY);
  return logs
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('nanocell agent claude', () => {
  it('starts Claude Code from ~/.npm-global; the stand-in gets the real key, the cell a placeholder, nothing else is reachable', async () => {
    const policy = pinPolicy;
    const report = path.join(dir, 'agent.json');
    const r = await run([
      'agent',
      'claude',
      '--policy',
      policy,
      '--workspace',
      sb.project,
      '--timeout',
      '120s',
      '--report',
      report,
      '--',
      '-p',
      'say hello',
    ]);
    expect(r.stderr).not.toContain(CANARY);
    expect(r.stdout).not.toContain(CANARY);
    expect(r.stdout).toContain(ANSWER);
    expect(r.status).toBe(0);

    // It reached the stand-in, every request carrying the real key (swapped in by the proxy).
    const messages = seen.filter((s) => s.method === 'POST' && s.url.startsWith('/v1/messages'));
    expect(messages.length).toBeGreaterThan(0);
    expect(new Set(seen.map((s) => s.key))).toEqual(new Set([CANARY]));

    // It ran the preset's binary from the user prefix, with its inner sandbox switched off.
    const taskId = (JSON.parse(fs.readFileSync(report, 'utf8')) as { taskId: string }).taskId;
    const ev = events(taskId);
    const exec = ev.find((e) => e.type === 'exec' && (e.argv as string[])[0] === 'claude') as {
      argv: string[];
      path: string;
    };
    expect(exec.path).toBe(path.join(home, '.npm-global/bin/claude'));
    expect(exec.argv).toEqual(expect.arrayContaining(['--settings', '-p', 'say hello']));
    // Nothing but the API host was reached; the proxy recorded each use of the key.
    const net = ev.filter((e) => String(e.type).startsWith('net.'));
    expect(net.length).toBeGreaterThan(0);
    expect(net.filter((e) => e.type === 'net.allowed').map((e) => e.host)).toEqual(
      net.filter((e) => e.type === 'net.allowed').map(() => API),
    );
    const used = ev.filter((e) => e.type === 'secret.used');
    expect(used.length).toBeGreaterThanOrEqual(messages.length);
    expect(used.every((e) => e.name === 'ANTHROPIC_API_KEY' && e.host === API)).toBe(true);
    expect(ev.filter((e) => e.type === 'secret.misuse')).toEqual([]);

    // Its state dir is kept under the state root, per project, and never holds the key; the
    // user's real ~/.claude was never touched.
    const agents = path.join(sb.stateRoot, 'agents');
    const kept = fs.readdirSync(agents).map((k) => path.join(agents, k, 'agent-claude'));
    expect(kept).toHaveLength(1);
    expect(fs.readdirSync(kept[0]!).length).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(home, '.claude'))).toBe(false);
    expect(fs.existsSync(path.join(home, '.claude.json'))).toBe(false);
    expect(filesContaining(sb.stateRoot, CANARY)).toEqual([]);
  }, 240_000);

  it('a command under the same preset sees only the placeholder and reaches nothing but the API', async () => {
    const policy = path.join(dir, 'policy2.yaml');
    fs.writeFileSync(
      policy,
      JSON.stringify({
        preset: 'claude',
        network: { hosts: { [API]: ADDR }, cidrs: [`${ADDR}/32`] },
      }),
    );
    const script = [
      'echo "key=$ANTHROPIC_API_KEY"',
      'echo "config=$CLAUDE_CONFIG_DIR sandbox=$IS_SANDBOX telemetry=$DISABLE_TELEMETRY"',
      'command -v claude',
      'cat /proc/self/environ | tr "\\0" "\\n" | grep -c sk-ant- || true',
      `curl -sS -o /dev/null -w "api=%{http_code}\\n" https://${API}/v1/models -H "x-api-key: $ANTHROPIC_API_KEY"`,
      'curl -sS -m 5 -o /dev/null https://registry.npmjs.org/ 2>&1; echo "npm=$?"',
      'curl -sS -m 5 -o /dev/null https://example.com/ 2>&1; echo "other=$?"',
    ].join('\n');
    const r = await run([
      'run',
      '--policy',
      policy,
      '--workspace',
      sb.project,
      '--',
      'bash',
      '-c',
      script,
    ]);
    expect(r.stdout).not.toContain(CANARY);
    const placeholder = /key=(\S+)/.exec(r.stdout)?.[1] ?? '';
    expect(placeholder).toHaveLength(CANARY.length);
    expect(placeholder.startsWith('sk-ant-api03-')).toBe(true);
    expect(r.stdout).toContain('config=/home/cell/.claude sandbox=1 telemetry=1');
    expect(r.stdout).toContain(path.join(home, '.npm-global/bin/claude'));
    expect(r.stdout).toContain('api=200');
    expect(r.stdout).toMatch(/npm=[1-9]/);
    expect(r.stdout).toMatch(/other=[1-9]/);
    expect(seen.at(-1)).toMatchObject({ url: '/v1/models', key: CANARY });
  }, 120_000);

  it('gets a terminal when the user is at one: raw mode while it runs, restored after', async () => {
    const policy = pinPolicy;
    const r = await drivePty(
      ['agent', 'claude', '--policy', policy, '--workspace', sb.project, '--', '-p', 'say hello'],
      [{ sleep: 2 }, { raw: true }, { expect: ANSWER, timeout: 90 }],
      sb.stateRoot,
      { env: agentEnv() },
    );
    expect(r.log).toEqual(['raw=True']);
    expect(r.screen).toContain(ANSWER);
    expect(r.screen).not.toContain(CANARY);
    expect(r.status).toBe(0);
    expect(r.restored).toBe(true);
  }, 150_000);

  it('refuses at plan time, in one line with the fix, when the key is not set on the host', async () => {
    const r = nanocell(['agent', 'claude', '--workspace', sb.project, '--', '-p', 'hi'], {
      stateRoot: sb.stateRoot,
      env: { ...agentEnv(), ANTHROPIC_API_KEY: '' },
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /agent claude: ANTHROPIC_API_KEY is not set on the host.*fix: export ANTHROPIC_API_KEY/,
      ),
    ]);
  });
});
