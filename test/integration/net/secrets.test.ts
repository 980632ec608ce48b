// Credentials brokered by the proxy, end to end: the real CLI runs a real cell whose programs
// (curl) call a loopback TLS stand-in upstream named through network.hosts. The upstream gets
// the real key; the cell holds only a placeholder of the same length and prefix; misuse is
// refused and recorded; and the real value's bytes are nowhere the cell or the records reach.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox, nanocell, spawnNanocell, type Sandbox } from '../../helpers/cells.js';
import { Harness } from './harness.js';

const CANARY = `sk-ant-api03-${'Zq9'.repeat(10)}CANARYc4n4ry-${Date.now()}AA`;
const HOST = 'api.stand-in.test';
const PLAIN = 'plain.stand-in.test';

let h: Harness;
let sb: Sandbox;
let tlsPort = 0;
let plainPort = 0;
let caFile = '';
const seen: { url: string; key: string | undefined; auth: string | undefined }[] = [];

beforeAll(async () => {
  h = new Harness();
  sb = makeSandbox({ 'a.txt': 'a\n' });
  const key = path.join(h.dir, 'up.key');
  caFile = path.join(h.dir, 'up.crt');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
      .concat(['-keyout', key, '-out', caFile, '-days', '1', '-subj', `/CN=${HOST}`])
      .concat(['-addext', `subjectAltName=DNS:${HOST}`]),
    { stdio: 'ignore' },
  );
  const record: http.RequestListener = (req, res) => {
    seen.push({
      url: req.url ?? '',
      key: req.headers['x-api-key'] as string | undefined,
      auth: req.headers.authorization,
    });
    // Never echo the key: the test checks where it could leak from the cell's side.
    res.end(`upstream saw key of length ${String(req.headers['x-api-key'] ?? '').length}\n`);
  };
  tlsPort = await h.listen(
    https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(caFile) }, record),
    '127.0.0.7',
  );
  plainPort = await h.listen(http.createServer(record), '127.0.0.8');
});

afterAll(async () => {
  sb?.cleanup();
  await h?.cleanup();
});

function run(args: string[], env: NodeJS.ProcessEnv) {
  return new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawnNanocell(args, { stateRoot: sb.stateRoot, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    child.on('close', (code) => resolve({ status: code ?? 137, stdout, stderr }));
  });
}

/** Every file under `dir` whose bytes contain `needle` (the state root: db, report, changes). */
function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.readFileSync(p).includes(needle)) hits.push(p);
    }
  };
  walk(dir);
  return hits;
}

describe('secrets brokered by the proxy', () => {
  it('the upstream gets the real key, the cell only a placeholder; misuse refused; no trace of the value', async () => {
    const policy = path.join(h.dir, 'policy.yaml');
    fs.writeFileSync(
      policy,
      JSON.stringify({
        network: {
          allow: [`${HOST}:${tlsPort}`, `${PLAIN}:${plainPort}`],
          cidrs: ['127.0.0.7/32', '127.0.0.8/32'],
          hosts: { [HOST]: '127.0.0.7', [PLAIN]: '127.0.0.8' },
        },
        secrets: [
          {
            name: 'ANTHROPIC_API_KEY',
            from: { env: 'CANARY_KEY' },
            hosts: [`${HOST}/v1/`],
            header: 'x-api-key',
          },
        ],
      }),
    );
    const U = `https://${HOST}:${tlsPort}`;
    const script = [
      'set -u',
      'echo "cell-key=$ANTHROPIC_API_KEY"',
      `curl -sS ${U}/v1/messages -H "x-api-key: $ANTHROPIC_API_KEY"`,
      `curl -sS ${U}/v1/messages -H "x-api-key: $ANTHROPIC_API_KEY"`,
      // The wrong path, the wrong header, the URL, plain HTTP elsewhere: each refused with 403.
      `curl -sS -o /dev/null -w "wrong-path=%{http_code}\\n" ${U}/admin -H "x-api-key: $ANTHROPIC_API_KEY"`,
      `curl -sS -o /dev/null -w "wrong-header=%{http_code}\\n" ${U}/v1/x -H "authorization: Bearer $ANTHROPIC_API_KEY"`,
      `curl -sS -o /dev/null -w "in-url=%{http_code}\\n" "${U}/v1/x?k=$ANTHROPIC_API_KEY"`,
      `curl -sS -w "plain=%{http_code}\\n" http://${PLAIN}:${plainPort}/ -H "x-api-key: $ANTHROPIC_API_KEY"`,
      // Where a program in the cell could look for the value.
      'env; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" "\\n"',
      'grep -rIl sk-ant /etc /tmp /home 2>/dev/null | head -5; echo "$ANTHROPIC_API_KEY" > key-seen.txt',
      'echo done',
    ].join('\n');
    const report = path.join(h.dir, 'report.json');
    const r = await run(
      [
        'run',
        '--policy',
        policy,
        '--workspace',
        sb.project,
        '--report',
        report,
        '--',
        'bash',
        '-c',
        script,
      ],
      { CANARY_KEY: CANARY, NODE_EXTRA_CA_CERTS: caFile },
    );
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.stdout).toContain('done');
    // The placeholder: same length, the prefix kept, not the value.
    const placeholder = /cell-key=(\S+)/.exec(r.stdout)?.[1] ?? '';
    expect(placeholder).toHaveLength(CANARY.length);
    expect(placeholder.startsWith('sk-ant-api03-')).toBe(true);
    expect(placeholder).not.toBe(CANARY);
    // The upstream saw the real key on both bound requests, over verified TLS, and nothing else.
    expect(r.stdout).toContain(`upstream saw key of length ${CANARY.length}`);
    expect(seen.filter((s) => s.url === '/v1/messages').map((s) => s.key)).toEqual([
      CANARY,
      CANARY,
    ]);
    expect(seen.map((s) => s.url)).toEqual(['/v1/messages', '/v1/messages']);
    expect(r.stdout).toContain('wrong-path=403');
    expect(r.stdout).toContain('wrong-header=403');
    expect(r.stdout).toContain('in-url=403');
    expect(r.stdout).toMatch(
      /refused: ANTHROPIC_API_KEY is not bound to plain\.stand-in\.test[\s\S]*plain=403/,
    );

    // The canary: not in stdout/stderr (env, /proc, files), the state root (audit db, report,
    // change set, anything left of the cell's upper layer), nor the exported audit events.
    expect(r.stdout).not.toContain(CANARY);
    expect(r.stderr).not.toContain(CANARY);
    expect(filesContaining(sb.stateRoot, CANARY)).toEqual([]);
    expect(fs.readFileSync(report, 'utf8')).not.toContain(CANARY);
    const id = (JSON.parse(fs.readFileSync(report, 'utf8')) as { taskId: string }).taskId;
    const logs = nanocell(['logs', id, '--json'], { stateRoot: sb.stateRoot }).stdout;
    expect(logs).not.toContain(CANARY);
    const diff = nanocell(['diff', id], { stateRoot: sb.stateRoot }).stdout;
    expect(diff).toContain(placeholder);
    expect(diff).not.toContain(CANARY);

    const events = logs
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const used = events.filter((e) => e.type === 'secret.used');
    expect(used).toHaveLength(2);
    expect(used[0]).toMatchObject({
      name: 'ANTHROPIC_API_KEY',
      host: HOST,
      method: 'GET',
      path: '/v1/messages',
      status: 200,
    });
    const misuse = events.filter((e) => e.type === 'secret.misuse');
    expect(misuse.map((e) => `${String(e.host)}${String(e.path)}`)).toEqual([
      `${HOST}/admin`,
      `${HOST}/v1/x`,
      `${HOST}/v1/x`,
      `${PLAIN}/`,
    ]);
  }, 180_000);

  it('fails closed: a secret whose value cannot be read stops the cell with its name and the fix', async () => {
    const r = await run(
      [
        'run',
        '--workspace',
        sb.project,
        '--allow-net',
        HOST,
        '--secret',
        `K=NOT_SET_ANYWHERE@${HOST}`,
        '--',
        'true',
      ],
      {},
    );
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/secret K: the host variable NOT_SET_ANYWHERE is not set \(fix: set/);
  }, 60_000);

  it('refuses an upstream whose certificate the host does not trust (no NODE_EXTRA_CA_CERTS)', async () => {
    seen.length = 0;
    const r = await run(
      [
        'run',
        '--workspace',
        sb.project,
        '--quiet',
        '--policy',
        path.join(h.dir, 'policy.yaml'),
        '--',
        'bash',
        '-c',
        `curl -sS -w "status=%{http_code}\\n" https://${HOST}:${tlsPort}/v1/messages -H "x-api-key: $ANTHROPIC_API_KEY"`,
      ],
      { CANARY_KEY: CANARY },
    );
    expect(r.stdout).toMatch(/not trusted[\s\S]*status=502/);
    expect(seen).toEqual([]);
  }, 60_000);
});
