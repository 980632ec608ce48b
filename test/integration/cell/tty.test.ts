// `nanocell run -t`: a real interactive program in a cell, driven through a real host pty as a
// user would drive it. The command's terminal is the cell's own (devpts newinstance), the
// user's terminal is raw while it runs and restored after, and the cell cannot inject input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';
import { drivePty } from '../../helpers/ptyDriver.js';

let sb: Sandbox;
beforeAll(() => {
  sb = makeSandbox({ 'a.txt': 'a\n' });
});
afterAll(() => sb.cleanup());

const PROMPT = 'cell$ ';
const BASH = ['bash', '--norc', '--noprofile', '-i'];
const runT = (extra: string[] = []) => [
  'run',
  '--workspace',
  sb.project,
  '--quiet',
  '-t',
  '--env',
  `PS1=${PROMPT}`,
  ...extra,
  '--',
  ...BASH,
];

// python in the cell tries TIOCSTI on its own terminal: typed input the user never typed.
const TIOCSTI_PY =
  'python3 -c \'import fcntl,termios,errno\ntry:\n fcntl.ioctl(0,termios.TIOCSTI,b"X");print("sti=ok")\nexcept OSError as e:print("sti="+errno.errorcode[e.errno])\'';

describe('run -t: a terminal inside the cell', () => {
  it('line editing, stty size and resize, Ctrl-C to the foreground job, exit status, terminal restored', async () => {
    const r = await drivePty(
      runT(),
      [
        { expect: 'cell\\$ ' },
        { raw: true },
        { send: 'tty\r' },
        { expect: '/dev/pts/\\d+' },
        // Backspace erases in the cell's line editor: "echo abX<DEL>c" runs "echo abc".
        { send: 'echo abX\x7fc\r' },
        { expect: '\rabc\r' },
        { send: 'stty size\r' },
        { expect: '30 100' },
        { resize: [132, 43] },
        { sleep: 0.3 },
        { send: 'stty size\r' },
        { expect: '43 132' },
        { send: 'sleep 60\r' },
        { sleep: 0.5 },
        { send: '\x03' },
        { expect: 'cell\\$ ' },
        { send: 'echo rc=$?\r' },
        { expect: 'rc=130' },
        { send: 'exit 7\r' },
      ],
      sb.stateRoot,
    );
    expect(r.log).toEqual(['raw=True']);
    expect(r.status).toBe(7);
    expect(r.restored).toBe(true);
    // The cell's own devpts instance: the first terminal allocated in it.
    expect(r.screen).toMatch(/\/dev\/pts\/0\r/);
  }, 120_000);

  it('a cell cannot inject input into its terminal (TIOCSTI refused and recorded)', async () => {
    const r = await drivePty(
      runT(),
      [
        { expect: 'cell\\$ ' },
        { send: `${TIOCSTI_PY}\r` },
        { expect: 'sti=\\w+' },
        { send: 'exit\r' },
      ],
      sb.stateRoot,
    );
    expect(r.status).toBe(0);
    expect(r.screen).toMatch(/sti=EPERM/);
    const tasks = JSON.parse(
      nanocell(['tasks', '--json', '--limit', '1'], { stateRoot: sb.stateRoot }).stdout,
    ) as {
      id: string;
    }[];
    const events = nanocell(['logs', tasks[0]!.id, '--json'], { stateRoot: sb.stateRoot }).stdout;
    expect(events).toMatch(/"syscall":"ioctl"|"name":"ioctl"/);
  }, 120_000);

  it('the terminal is restored after a timeout and after SIGTERM to nanocell', async () => {
    const sleeper = (extra: string[]) => [
      'run',
      '--workspace',
      sb.project,
      '--quiet',
      '-t',
      ...extra,
      '--',
      'sh',
      '-c',
      'echo started; sleep 60',
    ];
    const timedOut = await drivePty(
      sleeper(['--timeout', '3s']),
      [{ expect: 'started' }, { raw: true }],
      sb.stateRoot,
    );
    expect(timedOut.log).toEqual(['raw=True']);
    expect(timedOut.status).toBe(124);
    expect(timedOut.restored).toBe(true);
    const termed = await drivePty(
      sleeper([]),
      [{ expect: 'started' }, { raw: true }, { signal: 15 }],
      sb.stateRoot,
    );
    expect(termed.log).toEqual(['raw=True']);
    expect(termed.status).toBe(137);
    expect(termed.restored).toBe(true);
  }, 120_000);

  it('-t without a terminal on stdin is refused with the fix', () => {
    const r = nanocell(['run', '--workspace', sb.project, '-t', '--', 'true'], {
      stateRoot: sb.stateRoot,
    });
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/-t needs a terminal on stdin.*-i/s);
  });
});

describe('cell.exec with tty (library)', () => {
  it('runs on a terminal of the given size, follows resize, and types ^C as SIGINT', async () => {
    const cell = await Cell.create({
      policy: resolvePolicy(parsePolicy({})),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
    });
    try {
      const script =
        'stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; ' +
        'trap "w=winched" WINCH; echo ready; read line; echo "got:$line $w"; stty size; ' +
        'trap "echo interrupted; exit 9" INT; echo armed; while :; do sleep 0.1; done';
      const x = cell.exec(['bash', '-c', script], { tty: { cols: 90, rows: 20 } });
      let screen = '';
      let err = '';
      x.stdout.on('data', (d: Buffer) => (screen += d.toString('latin1')));
      x.stderr.on('data', (d: Buffer) => (err += d.toString('latin1')));
      const seen = async (text: string) => {
        for (let i = 0; i < 300 && !screen.includes(text); i++) await sleep(50);
        expect(screen).toContain(text);
      };
      await seen('ready');
      x.resize({ cols: 101, rows: 33 });
      await sleep(300);
      x.stdin.write('hello\r');
      await seen('armed');
      x.stdin.write('\x03');
      const outcome = await x.result;
      expect(outcome.exitCode).toBe(9);
      // The terminal's line discipline: \n becomes \r\n, typed input is echoed.
      expect(screen).toMatch(/^20 90\r\nall-tty\r\n/);
      expect(screen).toContain('hello\r\ngot:hello winched\r\n33 101\r\n');
      expect(screen).toContain('interrupted');
      // stderr goes to the same terminal: the stderr stream itself is empty.
      expect(err).toBe('');
    } finally {
      await cell.destroy();
    }
  }, 120_000);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
