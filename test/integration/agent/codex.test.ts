// `nanocell agent codex`, for real: Codex CLI installed from the npm registry into ~/.npm-global
// of a home the test owns, started in a cell with `codex exec`. api.openai.com is pinned to a
// loopback TLS stand-in: the proxy sends it the host's OPENAI_API_KEY while the cell's
// CODEX_API_KEY is a placeholder, Codex's own sandbox is off by name, nothing else is reached.
import fs from 'node:fs';
import type { ServerResponse } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';
import { CODEX_CLI, installAgentCli } from '../../helpers/agentCli.js';
import {
  agentEnv,
  filesContaining,
  pinPolicy,
  runCli,
  startStandIn,
  type StandIn,
} from '../../helpers/agentStandIn.js';

const CANARY = `sk-proj-${'Wv3'.repeat(12)}CODEXc4n4ry${Date.now()}`;
const API = 'api.openai.com';
const ANSWER = 'hello from the stand-in';

let sb: Sandbox;
let dir = '';
let home = '';
let api: StandIn;
let pinned = '';

/** A Responses API answer as server-sent events: one assistant message, then completed. */
function answer(res: ServerResponse) {
  res.setHeader('content-type', 'text/event-stream');
  const ev = (type: string, d: object) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, ...d })}\n\n`;
  const usage = {
    input_tokens: 1,
    input_tokens_details: null,
    output_tokens: 1,
    output_tokens_details: null,
    total_tokens: 2,
  };
  const item = {
    type: 'message',
    role: 'assistant',
    id: 'msg_standin',
    content: [{ type: 'output_text', text: ANSWER }],
  };
  res.end(
    ev('response.created', { response: { id: 'resp_standin' } }) +
      ev('response.output_item.done', { item }) +
      ev('response.completed', { response: { id: 'resp_standin', usage } }),
  );
}

beforeAll(async () => {
  sb = makeSandbox({ 'README.md': 'a project\n' });
  dir = fs.mkdtempSync(path.join('/var/tmp', 'nanocell-codex-'));
  home = path.join(dir, 'home');
  fs.mkdirSync(home);
  installAgentCli(home, CODEX_CLI);
  api = await startStandIn(dir, API, 10, (req, _body, res) => {
    // No WebSocket here: Codex falls back to HTTPS, as it does behind proxies that refuse one.
    if (req.headers.upgrade) return void res.writeHead(404).end();
    if (req.method === 'POST' && req.url.startsWith('/v1/responses')) return answer(res);
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

describe('nanocell agent codex', () => {
  it('runs codex exec: the stand-in gets the real key, the cell a placeholder, nothing else is reachable', async () => {
    const report = path.join(dir, 'codex.json');
    const r = await runCli(
      ['agent', 'codex', '--policy', pinned, '--workspace', sb.project, '--report', report].concat([
        '--timeout',
        '120s',
        '--',
        'exec',
        '--skip-git-repo-check',
        'say hello',
      ]),
      sb.stateRoot,
      agentEnv(home, api, { OPENAI_API_KEY: CANARY }),
    );
    expect(r.stdout + r.stderr).not.toContain(CANARY);
    expect(r.stdout).toContain(ANSWER);
    expect(r.status).toBe(0);

    const posts = api.seen.filter((s) => s.method === 'POST' && s.url === '/v1/responses');
    expect(posts.length).toBeGreaterThan(0);
    expect(new Set(api.seen.map((s) => s.headers.authorization))).toEqual(
      new Set([`Bearer ${CANARY}`]),
    );

    const taskId = (JSON.parse(fs.readFileSync(report, 'utf8')) as { taskId: string }).taskId;
    const logs = nanocell(['logs', taskId, '--json'], { stateRoot: sb.stateRoot }).stdout;
    expect(logs).not.toContain(CANARY);
    const ev = logs
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const exec = ev.find((e) => e.type === 'exec' && (e.argv as string[])[0] === 'codex');
    expect(exec?.argv).toEqual(
      ['codex', '-c', 'sandbox_mode="danger-full-access"', 'exec'].concat([
        '--skip-git-repo-check',
        'say hello',
      ]),
    );
    const allowed = ev.filter((e) => e.type === 'net.allowed').map((e) => e.host);
    expect(allowed.length).toBeGreaterThan(0);
    expect(new Set(allowed)).toEqual(new Set([API]));
    expect(ev.filter((e) => e.type === 'secret.misuse')).toEqual([]);
    expect(ev.some((e) => e.type === 'secret.used' && e.name === 'CODEX_API_KEY')).toBe(true);

    // CODEX_HOME is the kept per-project dir, never ~/.codex, and never holds the key.
    const agents = path.join(sb.stateRoot, 'agents');
    const kept = fs.readdirSync(agents).map((k) => path.join(agents, k, 'agent-codex'));
    expect(kept).toHaveLength(1);
    expect(fs.readdirSync(kept[0]!).length).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(home, '.codex'))).toBe(false);
    expect(filesContaining(sb.stateRoot, CANARY)).toEqual([]);
  }, 240_000);
});
