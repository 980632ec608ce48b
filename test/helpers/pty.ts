// The user's terminal, from the test side: the CLI runs on a real pseudo-terminal (python's pty
// module), and the test gets every byte the terminal received, stdout and stderr interleaved as
// the user would see them.
import { spawnSync } from 'node:child_process';
import { CLI, REPO } from './cells.js';

const PTY_PY = `
import base64, os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.environ["COLUMNS"] = "120"
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        d = os.read(fd, 65536)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
sys.stdout.write(str(os.waitstatus_to_exitcode(st)) + "\\n" + base64.b64encode(out).decode())
`;

export interface PtyResult {
  status: number;
  /** Every byte the terminal received, as latin1 so each byte is one char. */
  screen: string;
}

/** Runs `nanocell ARGS` with stdin, stdout and stderr on a fresh pty. */
export function nanocellOnPty(args: string[], stateRoot: string): PtyResult {
  const r = spawnSync('python3', ['-c', PTY_PY, 'node', CLI, ...args], {
    cwd: REPO,
    env: { ...process.env, NANOCELL_STATE_ROOT: stateRoot, NO_COLOR: '' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  const [status, b64] = r.stdout.split('\n');
  if (b64 === undefined) throw new Error(`pty helper failed: ${r.stderr}`);
  return { status: Number(status), screen: Buffer.from(b64, 'base64').toString('latin1') };
}
