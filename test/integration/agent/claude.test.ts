// `nanocell agent claude`, for real: Claude Code installed from the npm registry into a user
// prefix (~/.npm-global) of a home the test owns, found there by its preset, started in a cell
// with `-p`. Its API host, api.anthropic.com, is pinned through network.hosts to a loopback
// TLS stand-in whose CA only nanocell trusts (NODE_EXTRA_CA_CERTS), so the real key goes from
// the proxy to the stand-in while the cell holds a placeholder, and nothing else is reachable.
import fs from 'node:fs';
import type { ServerResponse } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';
import { CLAUDE_CODE, installAgentCli } from '../../helpers/agentCli.js';
import {
  agentEnv,
  filesContaining,
  pinPolicy,
  runCli,
  startStandIn,
  type StandIn,
} from '../../helpers/agentStandIn.js';
import { drivePty } from '../../helpers/ptyDriver.js';

const CANARY = `sk-ant-api03-${'Qx7'.repeat(12)}AGENTc4n4ry${Date.now()}AA`;
const API = 'api.anthropic.com';
const ANSWER = 'hello from the stand-in';

let sb: Sandbox;
let dir = '';
let home = '';
let api: StandIn;
/** The user's policy: it extends the preset only to pin the API host to the stand-in. */
let pinned = '';

/** An Anthropic Messages API answer, streamed (server-sent events) when the request asks. */
function answer(body: string, res: ServerResponse) {
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
  api = await startStandIn(dir, API, 9, (req, body, res) => {
    if (req.method === 'POST' && req.url.startsWith('/v1/messages')) return answer(body, res);
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  });
  pinned = pinPolicy(dir, API, api);
}, 360_000);

afterAll(async () => {
  await api?.close();
  sb?.cleanup();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const env = () => agentEnv(home, api, { ANTHROPIC_API_KEY: CANARY });
const run = (args: string[]) => runCli(args, sb.stateRoot, env());
const seen = () => api.seen.map((s) => ({ ...s, key: s.headers['x-api-key'] }));

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
    const policy = pinned;
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
    const messages = seen().filter((s) => s.method === 'POST' && s.url.startsWith('/v1/messages'));
    expect(messages.length).toBeGreaterThan(0);
    expect(new Set(seen().map((s) => s.key))).toEqual(new Set([CANARY]));

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
        network: { hosts: { [API]: api.addr }, cidrs: [`${api.addr}/32`] },
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
    expect(seen().at(-1)).toMatchObject({ url: '/v1/models', key: CANARY });
  }, 120_000);

  it('gets a terminal when the user is at one: raw mode while it runs, restored after', async () => {
    const policy = pinned;
    const r = await drivePty(
      ['agent', 'claude', '--policy', policy, '--workspace', sb.project, '--', '-p', 'say hello'],
      [{ sleep: 2 }, { raw: true }, { expect: ANSWER, timeout: 90 }],
      sb.stateRoot,
      { env: env() },
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
      env: { ...env(), ANTHROPIC_API_KEY: '' },
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /agent claude: ANTHROPIC_API_KEY is not set on the host.*fix: export ANTHROPIC_API_KEY/,
      ),
    ]);
  });
});
