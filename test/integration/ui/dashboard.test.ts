// `nanocell ui` end to end in Debian's Chromium (playwright-core, the system browser): a
// running cell appears with its CPU and memory against its limits, its task page groups a
// flood of events, a diff is reviewed, one chosen file is applied and the project checked on
// disk, then the rest; a session page lists its stacked tasks; hostile names stay text; a
// tampered audit row shows as a broken chain; requests without the token or from another
// origin are refused.
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

// A flood of denied syscalls (10,000 unshare calls), hostile names, a changed and a new file,
// then a busy loop.
const TASK = [
  'python3 -c "import ctypes; l=ctypes.CDLL(None); [l.syscall(272, 0x10000000) for _ in range(10000)]"',
  'printf "one\\nTWO\\nthree\\n" > a.txt',
  'echo new > b.txt',
  'echo x > "$(printf \'<img src=x onerror=alert(1)>\\033[31m.txt\')"',
  // Six seconds of busy CPU, so the live view has a rate to show against the 1-CPU limit.
  'python3 -c "import time; t=time.time()+6; [0 for _ in iter(lambda: time.time() < t, False)]"',
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
    // CPU and memory against the cell's cgroup limits (defaults: 1 CPU, 1 GiB), updated live:
    // the first reading has no rate yet, the next ones do.
    const cpu = live.first().locator('[data-meter="cpu"]');
    const memory = live.first().locator('[data-meter="memory"]');
    const busy = async () => {
      const m = /^(\d+\.\d)% of 1 CPU$/.exec((await cpu.textContent()) ?? '');
      return m ? Number(m[1]) : -1;
    };
    await expect.poll(busy, { timeout: 30_000 }).toBeGreaterThan(20);
    await expect.poll(() => memory.textContent()).toMatch(/^\d+\.\d MiB of 1024\.0 MiB$/);
    // Refreshed every second: the row's age moves on.
    const ageCell = live.first().locator('td').nth(2);
    const before = await ageCell.textContent();
    await expect.poll(() => ageCell.textContent(), { timeout: 5000 }).not.toBe(before);
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

    // Apply one chosen file: only it reaches the project; the rest stays, a.txt marked applied.
    await page.locator('#files input.pick[data-path="a.txt"]').check();
    await page.locator('#apply-chosen').click();
    await expect.poll(() => page.locator('#msg').textContent()).toBe('applied 1 change(s); 2 left');
    expect(fs.readFileSync(path.join(sb.project, 'a.txt'), 'utf8')).toBe('one\nTWO\nthree\n');
    expect(fs.existsSync(path.join(sb.project, 'b.txt'))).toBe(false);
    expect(fs.readdirSync(sb.project).sort()).toEqual(['a.txt', 'keep.txt']);
    await expect.poll(() => page.locator('#applied').textContent()).toBe('applied: a.txt');
    await expect.poll(() => page.locator('#files li').count()).toBe(2);
    await page.screenshot({ path: path.join(SHOTS, 'ui-chosen.png'), fullPage: true });
    // The CLI sees the same partial fate.
    expect(cli(['tasks']).stdout).toMatch(new RegExp(`${id} .*partly applied \\(1\\)`));
    const report = cli(['report', id]).stdout;
    expect(report).toMatch(/change set +partly applied \(1 path\(s\)\)/);
    expect(report).toMatch(/ +applied a\.txt\n/);
    expect(cli(['diff', id]).stdout).toContain('# already applied (apply --only): a.txt\n');

    await page.locator('#apply').click();
    await expect.poll(() => page.locator('#msg').textContent()).toBe('applied 2 change(s)');
    expect(fs.readFileSync(path.join(sb.project, 'a.txt'), 'utf8')).toBe('one\nTWO\nthree\n');
    expect(fs.readFileSync(path.join(sb.project, 'b.txt'), 'utf8')).toBe('new\n');
    expect(fs.readFileSync(path.join(sb.project, 'keep.txt'), 'utf8')).toBe('kept\n');
    expect(cli(['tasks']).stdout).toMatch(new RegExp(`${id} .* applied `));
    expect(dialogs).toEqual([]);
  }, 240_000);

  it('shows a session page: its stacked tasks in order, with fate and denials, linking to each task', async () => {
    // The first task is refused a syscall three times; the second stacks on it (--from last).
    const deny =
      'python3 -c "import ctypes; l=ctypes.CDLL(None); [l.syscall(272, 0x10000000) for _ in range(3)]"';
    const first = cli([
      'run',
      '--quiet',
      '--session',
      'rev',
      '--',
      'sh',
      '-c',
      `${deny}; echo 1 > s.txt`,
    ]);
    expect(first.status, first.stderr).toBe(0);
    const second = cli([
      'run',
      '--quiet',
      '--session',
      'rev',
      '--from',
      'last',
      '--',
      'sh',
      '-c',
      'echo 2 >> s.txt',
    ]);
    expect(second.status, second.stderr).toBe(0);
    const ids = (
      JSON.parse(cli(['tasks', '--session', 'rev', '--json']).stdout) as { id: string }[]
    )
      .map((t) => t.id)
      .reverse();
    expect(ids).toHaveLength(2);
    // The CLI's own view of the session is the page's source.
    const listed = JSON.parse(cli(['sessions', '--json']).stdout) as {
      sessions: { name: string; tasks: string[] }[];
    };
    expect(listed.sessions.find((x) => x.name === 'rev')?.tasks).toEqual(ids);

    await page.goto(`${origin}/`);
    await page.locator('#sessions a', { hasText: 'rev' }).click();
    await page.locator('#session-tasks').waitFor();
    expect(page.url()).toBe(`${origin}/#/session/rev`);
    const rows = page.locator('#session-tasks tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    expect(await rows.nth(0).getAttribute('data-task')).toBe(ids[0]);
    expect(await rows.nth(1).getAttribute('data-task')).toBe(ids[1]);
    const cells = async (i: number) =>
      (await rows.nth(i).locator('td').allTextContents()).map((x) => x.trim());
    const [one, two] = [await cells(0), await cells(1)];
    expect(one.slice(0, 7)).toEqual(['1', ids[0], 'exited', '0', '3', 'pending', '']);
    expect(two.slice(0, 7)).toEqual(['2', ids[1], 'exited', '0', '0', 'pending', `on ${ids[0]}`]);
    await expect
      .poll(() => page.locator('#chain-line').textContent())
      .toBe(`unapplied chain (nanocell apply --session rev): ${ids[0]} → ${ids[1]}`);
    await page.screenshot({ path: path.join(SHOTS, 'ui-session.png'), fullPage: true });
    // The session applied as one: the page shows both applied.
    expect(cli(['apply', '--session', 'rev']).status).toBe(0);
    expect(fs.readFileSync(path.join(sb.project, 's.txt'), 'utf8')).toBe('1\n2\n');
    await page.reload();
    await expect.poll(async () => (await cells(1))[5]).toBe('applied');
    expect((await cells(0))[5]).toBe('applied');
    await rows.nth(1).locator('a').click();
    await expect.poll(() => page.locator('h2').first().textContent()).toBe(`Task ${ids[1]}`);
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
