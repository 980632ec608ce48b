// `--env NAME` and `--env-file` in a real cell: the command sees the values, while no host
// process's command line, the report or any file under the state root (the audit store
// included) holds them; the report names the variables.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeSandbox, spawnNanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
beforeEach(() => {
  sb = makeSandbox();
});
afterEach(() => sb.cleanup());

function allCmdlines(): string {
  let out = '';
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      out += fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1') + '\n';
    } catch {
      // exited
    }
  }
  return out;
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('environment by name', () => {
  it('passes --env NAME and --env-file values without writing them anywhere', async () => {
    const fromHost = `host-${randomBytes(12).toString('hex')}`;
    const fromFile = `file-${randomBytes(12).toString('hex')}`;
    const base = path.dirname(sb.project);
    const envFile = path.join(base, 'task.env');
    fs.writeFileSync(envFile, `# keys\nFILE_TOKEN=${fromFile}\n`);
    const report = path.join(base, 'report.json');
    const child = spawnNanocell(
      [
        'run',
        '--quiet',
        '--workspace',
        sb.project,
        '--report',
        report,
        '--env',
        'HOST_TOKEN',
        '--env-file',
        envFile,
        '--',
        'sh',
        '-c',
        'printf %s "$HOST_TOKEN" | sha256sum; printf %s "$FILE_TOKEN" | sha256sum; sleep 2',
      ],
      { stateRoot: sb.stateRoot, env: { HOST_TOKEN: fromHost } },
    );
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    // Scan every host command line while the cell runs (after its first output).
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const cmdlines = allCmdlines();
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(stdout).toContain(sha(fromHost));
    expect(stdout).toContain(sha(fromFile));
    expect(cmdlines).toContain('HOST_TOKEN');
    for (const v of [fromHost, fromFile]) {
      expect(cmdlines).not.toContain(v);
      for (const f of [report, ...filesUnder(sb.stateRoot)]) {
        expect(fs.readFileSync(f, 'latin1'), f).not.toContain(v);
      }
    }
    const r = JSON.parse(fs.readFileSync(report, 'utf8')) as { envNames: string[] };
    expect(r.envNames).toEqual(['FILE_TOKEN', 'HOST_TOKEN']);
  });
});
