// `nanocell ui` end to end in Debian's Chromium (playwright-core, the system browser): a
// running cell appears, its task page groups a flood of events, a diff is reviewed, the change
// set is applied and the project checked on disk; hostile names stay text; a tampered audit row
// shows as a broken chain; requests without the token or from another origin are refused.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import {
  CLI,
  makeSandbox,
  nanocell,
  REPO,
  spawnNanocell,
  type Sandbox,
} from '../../helpers/cells.js';

const SHOTS = path.join(REPO, 'docs', 'img');
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

let sb: Sandbox;
let ui: ChildProcess;
let url: string;
let origin: string;
let profile: string;
let browser: BrowserContext;
let page: Page;

beforeAll(async () => {
  sb = makeSandbox({ 'a.txt': 'one\ntwo\nthree\n', 'keep.txt': 'kept\n' });
  ui = spawn('node', [CLI, 'ui'], {
    env: { ...process.env, NANOCELL_STATE_ROOT: sb.stateRoot },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    ui.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]+)\n/.exec(out);
      if (m) resolve(m[1]!);
    });
    ui.once('close', (code) => reject(new Error(`nanocell ui exited with ${code}`)));
  });
  origin = new URL(url).origin;
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'nanocell-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: CHROMIUM_FLAGS,
    viewport: { width: 1200, height: 800 },
  });
  page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(url);
  fs.mkdirSync(SHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  ui?.kill('SIGTERM');
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  sb?.cleanup();
});

const cli = (args: string[]) => nanocell(args, { stateRoot: sb.stateRoot, cwd: sb.project });

// A flood of denied syscalls (10,000 unshare calls), hostile names, a changed and a new file.
const TASK = [
  'python3 -c "import ctypes; l=ctypes.CDLL(None); [l.syscall(272, 0x10000000) for _ in range(10000)]"',
  'printf "one\\nTWO\\nthree\\n" > a.txt',
  'echo new > b.txt',
  'echo x > "$(printf \'<img src=x onerror=alert(1)>\\033[31m.txt\')"',
  'sleep 6',
].join('; ');

describe('nanocell ui in Chromium', () => {
  it('refuses requests without the token, from another origin, and actions without the header', async () => {
    expect((await fetch(`${origin}/api/tasks`)).status).toBe(401);
    expect((await fetch(`${origin}/?token=wrong`)).status).toBe(401);
    // The browser exchanged the URL's token for the session cookie; the URL opens nothing now.
    expect(new URL(page.url()).search).toBe(''); // the token left the address bar
    const again = await fetch(url, { redirect: 'manual' });
    expect(again.status).toBe(401);
    const c = (await browser.cookies()).find((x) => x.name === 'nanocell_ui')!;
    expect(c).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    const cookie = `${c.name}=${c.value}`;
    const ok = await fetch(`${origin}/api/tasks`, { headers: { cookie } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBeNull();
    const evil = await fetch(`${origin}/api/tasks`, {
      headers: { cookie, origin: 'http://evil.example' },
    });
    expect(evil.status).toBe(403);
    const post = await fetch(`${origin}/api/tasks/x/discard`, {
      method: 'POST',
      headers: { cookie },
    });
    expect(post.status).toBe(403);
  });

  it('shows a running cell, its grouped timeline and diff, applies, and escapes names', async () => {
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`${origin}/`);
    const run = spawnNanocell(['run', '--quiet', '--', 'sh', '-c', TASK], {
      stateRoot: sb.stateRoot,
      cwd: sb.project,
    });
    run.stdout!.resume();
    run.stderr!.resume();
    const ended = new Promise((r) => run.once('close', r));
    const live = page.locator('#cells tbody tr');
    await live.first().waitFor({ timeout: 60_000 });
    const id = (await live.first().locator('td').first().textContent())!.trim();
    expect(id).toMatch(/^[0-9a-z]{18}$/);
    await page.screenshot({ path: path.join(SHOTS, 'ui-live.png') });
    await ended;

    await page.goto(`${origin}/#/task/${id}`);
    await page.locator('#timeline').waitFor();
    await expect.poll(() => page.locator('#chain').textContent()).toMatch(/hash chain intact/);
    // 10,000 denials are one counted row, not 10,000.
    const unshare = page.locator('#timeline tr', { hasText: 'unshare' });
    await expect.poll(() => unshare.count()).toBe(1);
    expect(await unshare.textContent()).toContain('×10000');

    const files = page.locator('#files li');
    await expect.poll(() => files.count()).toBe(3);
    // The hostile name is text: no element was made of it, the escape is visible.
    expect(await page.locator('img').count()).toBe(0);
    await expect
      .poll(() => page.locator('#files').textContent())
      .toContain('<img src=x onerror=alert(1)>\\e[31m.txt');
    await page.locator('#files li[data-path="a.txt"]').click();
    const mod = page.locator('#sbs tr.mod');
    await mod.waitFor();
    expect(await mod.locator('td.l').textContent()).toBe('two');
    expect(await mod.locator('td.r').textContent()).toBe('TWO');
    await page.screenshot({ path: path.join(SHOTS, 'ui-task.png'), fullPage: true });

    const patch = await page.request.get(`${origin}/api/tasks/${id}/patch`);
    expect(await patch.text()).toContain('+TWO');

    await page.locator('#apply').click();
    await expect.poll(() => page.locator('#msg').textContent()).toBe('applied 3 change(s)');
    expect(fs.readFileSync(path.join(sb.project, 'a.txt'), 'utf8')).toBe('one\nTWO\nthree\n');
    expect(fs.readFileSync(path.join(sb.project, 'b.txt'), 'utf8')).toBe('new\n');
    expect(fs.readFileSync(path.join(sb.project, 'keep.txt'), 'utf8')).toBe('kept\n');
    expect(dialogs).toEqual([]);
  }, 240_000);

  it('says the chain is broken when an audit row was tampered with, and 404s unknown ids', async () => {
    expect(cli(['run', '--quiet', '--', 'true']).status).toBe(0);
    const id = (JSON.parse(cli(['tasks', '--json']).stdout) as { id: string }[])[0]!.id;
    execFileSync('sqlite3', [
      path.join(sb.stateRoot, 'nanocell.db'),
      `UPDATE events SET payload = replace(payload, '"exitCode":0', '"exitCode":1') WHERE task_id = '${id}' AND type = 'task.exited';`,
    ]);
    await page.goto(`${origin}/#/task/${id}`);
    await expect
      .poll(() => page.locator('#chain').textContent())
      .toMatch(/audit chain is broken at event \d+/);
    const r = await page.request.get(`${origin}/api/tasks/zzzzzzzz`);
    expect(r.status()).toBe(404);
  }, 120_000);
  it('answers a running cell egress request: deny, allow once, allow for this cell', async () => {
    const upstream = http.createServer((_req, res) => res.end('hello\n'));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.7', () => r()));
    const port = (upstream.address() as { port: number }).port;
    const policy = path.join(sb.project, '..', 'policy.json');
    fs.writeFileSync(
      policy,
      JSON.stringify({
        network: {
          allow: [`ok.test:${port}`],
          hosts: { 'ok.test': '127.0.0.7', 'api.test': '127.0.0.7' },
          cidrs: ['127.0.0.7/32'],
        },
      }),
    );
    const run = spawnNanocell(['run', '--quiet', '--policy', policy, '--', 'sleep', '120'], {
      stateRoot: sb.stateRoot,
      cwd: sb.project,
    });
    run.stdout!.resume();
    run.stderr!.resume();
    const ended = new Promise((r) => run.once('close', r));
    try {
      const control = path.join(sb.stateRoot, 'control');
      let id = '';
      for (let i = 0; i < 600 && !id; i++) {
        id =
          (fs.existsSync(control) ? fs.readdirSync(control) : [])[0]?.replace(/\.sock$/, '') ?? '';
        if (!id) await new Promise((r) => setTimeout(r, 100));
      }
      expect(id).not.toBe('');
      // Async: the upstream server lives in this process, so its event loop must keep running.
      const curl = () =>
        new Promise<string>((resolve) => {
          const args = [
            'exec',
            id,
            '--',
            'curl',
            '-s',
            '-m',
            '20',
            '-o',
            '/dev/null',
            '-w',
            '%{http_code}',
            `http://api.test:${port}/`,
          ];
          execFile(
            'node',
            [CLI, ...args],
            { env: { ...process.env, NANOCELL_STATE_ROOT: sb.stateRoot } },
            (_e, out) => resolve(String(out)),
          );
        });
      expect(await curl()).toBe('403');

      const answer = async (decision: string, label: string) => {
        await page.goto(`${origin}/#/task/${id}`);
        await page.reload();
        const b = page.locator(
          `#requests button[data-dest="api.test:${port}"][data-decision="${decision}"]`,
        );
        await b.click();
        await expect
          .poll(() => page.locator('#req-msg').textContent())
          .toBe(`api.test:${port}: ${label}`);
      };
      await answer('deny', 'denied');
      expect(await curl()).toBe('403');
      await answer('once', 'allowed once');
      await page.screenshot({ path: path.join(SHOTS, 'ui-requests.png'), fullPage: true });
      expect(await curl()).toBe('200');
      // The once-grant went with the connection it allowed.
      await new Promise((r) => setTimeout(r, 300));
      expect(await curl()).toBe('403');
      await answer('cell', 'allowed for this cell');
      expect(await curl()).toBe('200');
      expect(await curl()).toBe('200');

      const log = cli(['logs', id]).stdout;
      const decisions =
        log.match(
          /net\.decision\s+\S+ (denied|allowed once|allowed for this cell) by the user \(uid 0\)/g,
        ) ?? [];
      expect(decisions.map((l) => l.replace(/.*: /, ''))).toEqual([
        'denied by the user (uid 0)',
        'allowed once by the user (uid 0)',
        'allowed for this cell by the user (uid 0)',
      ]);
      expect(cli(['kill', id]).status).toBe(0);
    } finally {
      if (run.exitCode === null) run.kill('SIGKILL');
      await ended;
      upstream.close();
    }
  }, 240_000);
});
