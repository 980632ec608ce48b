// The control socket of a rootless task: the unprivileged user who started it reaches it, so
// does root, and the socket lives under that user's own state root.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nanocell, cliFor } from '../../helpers/cells.js';
import {
  makeRootlessSandbox,
  ROOTLESS_USER,
  type RootlessSandbox,
} from '../../helpers/rootless.js';

let sb: RootlessSandbox;
beforeAll(() => {
  sb = makeRootlessSandbox('rootless-control-', { 'a.txt': 'a\n' });
});
afterAll(() => sb?.cleanup());

describe('rootless control socket', () => {
  it('serves the user who started the task and root, and ends with kill', async () => {
    const cli = cliFor(ROOTLESS_USER, sb.base);
    const run = spawn(
      'runuser',
      [
        '-u',
        ROOTLESS_USER,
        '--',
        'env',
        `NANOCELL_STATE_ROOT=${sb.stateRoot}`,
        'node',
        cli,
        'run',
        '--quiet',
        // This host's cgroups are v1, which an unprivileged user cannot configure.
        '--allow-degraded',
        'cgroups',
        '--allow-degraded',
        'disk-cap',
        '--',
        'sleep',
        '120',
      ],
      { cwd: sb.project, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    run.stderr.on('data', (d: Buffer) => (err += d.toString()));
    run.stdout.resume();
    const closed = once(run, 'close');
    try {
      const control = path.join(sb.stateRoot, 'control');
      let id = '';
      for (let i = 0; i < 600 && !id && run.exitCode === null; i++) {
        id =
          (fs.existsSync(control) ? fs.readdirSync(control) : [])[0]?.replace(/\.sock$/, '') ?? '';
        if (!id) await new Promise((r) => setTimeout(r, 100));
      }
      expect(id, err).not.toBe('');
      const st = fs.statSync(path.join(control, `${id}.sock`));
      expect(st.uid).not.toBe(0);
      expect(st.mode & 0o777).toBe(0o600);

      const mine = sb.asUser(['exec', id.slice(0, 8), '--', 'sh', '-c', 'cat a.txt']);
      expect(mine.status, mine.stderr).toBe(0);
      expect(mine.stdout).toBe('a\n');
      // Root is let in by the peer check (the modes do not stop root).
      const root = nanocell(['exec', id, '--', 'echo', 'root here'], { stateRoot: sb.stateRoot });
      expect(root.stdout).toBe('root here\n');
      expect(sb.asUser(['kill', id]).status).toBe(0);
      await closed;
      expect(run.exitCode).toBe(137);
      const log = sb.asUser(['logs', id]).stdout;
      expect(log).toMatch(new RegExp(`control\\s+exec by uid ${st.uid} pid \\d+: sh -c`));
      expect(log).toMatch(/control\s+exec by uid 0 pid \d+: echo/);
    } finally {
      if (run.exitCode === null) run.kill('SIGKILL');
    }
  });
});
