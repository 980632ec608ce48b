// A user at a terminal, scripted: the CLI runs on a real host pty (python's pty and termios
// modules), and the test types keys, waits for output, resizes the window, and finally learns
// the terminal's modes before, during and after, and every byte the terminal received.
import { spawn } from 'node:child_process';
import { CLI, REPO } from './cells.js';

const DRIVER_PY = String.raw`
import base64, fcntl, json, os, re, select, struct, subprocess, sys, termios, time
steps = json.loads(sys.argv[1])
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
def ctty():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
before = termios.tcgetattr(slave)
p = subprocess.Popen(sys.argv[2:], stdin=slave, stdout=slave, stderr=slave,
                     start_new_session=True, preexec_fn=ctty, cwd=os.environ.get("DRIVER_CWD"))
out = b""
log = []
def pump(t):
    # Bytes read within t seconds (0: none). The driver holds the slave, so no EOF ever comes.
    global out
    r, _, _ = select.select([master], [], [], t)
    if not r:
        return 0
    try:
        d = os.read(master, 65536)
    except OSError:
        return 0
    out += d
    return len(d)
def raw_now():
    return not (termios.tcgetattr(slave)[3] & termios.ICANON)
mark = 0
failed = False
for s in steps:
    if "send" in s:
        os.write(master, s["send"].encode("latin1"))
    elif "sleep" in s:
        end = time.time() + s["sleep"]
        while time.time() < end:
            pump(0.05)
    elif "resize" in s:
        cols, rows = s["resize"]
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    elif "expect" in s:
        end = time.time() + s.get("timeout", 30)
        rx = re.compile(s["expect"].encode("latin1"))
        while True:
            m = rx.search(out, mark)
            if m:
                mark = m.end()
                break
            if time.time() > end or (p.poll() is not None and not pump(0.2)):
                log.append("timed out waiting for " + s["expect"])
                failed = True
                break
            pump(0.1)
        if failed:
            p.terminate()  # nanocell still cleans the cell up
            break
    elif "signal" in s:
        p.send_signal(s["signal"])
    elif "raw" in s:
        log.append("raw=" + str(raw_now()))
end = time.time() + 40
while p.poll() is None and time.time() < end:
    pump(0.1)
if p.poll() is None:
    p.kill()
    log.append("killed: did not exit")
status = p.wait()
while pump(0.2):
    pass
after = termios.tcgetattr(slave)
print(json.dumps({"status": status, "log": log, "restored": before == after,
                  "screen": base64.b64encode(out).decode()}))
`;

export type PtyStep =
  | { send: string }
  | { expect: string; timeout?: number }
  | { sleep: number }
  | { resize: [cols: number, rows: number] }
  | { signal: number }
  | { raw: true };

export interface DriveResult {
  status: number;
  /** Notes of the driver: `raw=True` for each `raw` step, and what timed out. */
  log: string[];
  /** The terminal's modes after nanocell ended equal those before it started. */
  restored: boolean;
  screen: string;
}

/**
 * Runs `nanocell ARGS` on a fresh 100x30 host pty and plays `steps` on it; `asUser` runs it as
 * that user (runuser), with the same state root.
 */
export function drivePty(
  args: string[],
  steps: PtyStep[],
  stateRoot: string,
  o: { asUser?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<DriveResult> {
  const prefix = o.asUser
    ? ['runuser', '-u', o.asUser, '--', 'env', `NANOCELL_STATE_ROOT=${stateRoot}`]
    : [];
  const argv = [...prefix, 'node', CLI, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', DRIVER_PY, JSON.stringify(steps), ...argv], {
      cwd: o.asUser ? '/' : REPO,
      env: {
        ...process.env,
        NANOCELL_STATE_ROOT: stateRoot,
        TERM: 'xterm',
        NO_COLOR: '',
        ...o.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      try {
        const r = JSON.parse(out) as Omit<DriveResult, 'screen'> & { screen: string };
        resolve({ ...r, screen: Buffer.from(r.screen, 'base64').toString('latin1') });
      } catch {
        reject(new Error(`pty driver failed: ${err || out}`));
      }
    });
  });
}
