/* eslint-disable no-control-regex -- these tests assert on raw terminal bytes */
// Output nobody can forge: a task that prints hostile escape sequences or creates hostile names
// attacks the user's terminal through every view of the CLI. Each test starts a real cell with
// the real CLI and asserts on what the user's terminal (a real pty, or the bytes the view
// writes) receives: no escape sequence beyond colour, no control character, no forged line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox, nanocell, type Sandbox } from '../helpers/cells.js';
import { nanocellOnPty } from '../helpers/pty.js';

let sb: Sandbox;
beforeAll(() => {
  sb = makeSandbox({ 'a.txt': 'a\n' });
});
afterAll(() => sb.cleanup());

const cli = (args: string[]) => nanocell(args, { stateRoot: sb.stateRoot });
/** Runs a bash script in a cell; returns the task id (the change set is kept). */
function task(script: string): string {
  const r = cli(['run', '--workspace', sb.project, '--quiet', '--', 'bash', '-c', script]);
  const id = /change set ([0-9a-z]{18})/.exec(r.stderr)?.[1];
  if (id) return id;
  return (JSON.parse(cli(['tasks', '--json', '--limit', '1']).stdout) as { id: string }[])[0]!.id;
}

/** Raw control characters a view must never print (newline and tab are layout). */
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]/u;

/** OSC 52 (clipboard), OSC 0 (title), clear screen, cursor up, DCS, 8-bit CSI, and colour. */
const HOSTILE = String.raw`\e]52;c;ZWNobyBwd25lZA==\a\e]0;pwned-title\a\e[2J\e[H\e[3A\eP+q544e\e\\\xc2\x9b2J\e[31mred\e[0m`;

describe('attacks on the terminal through the CLI', () => {
  it('TRM-01 run on a terminal drops clipboard, title, screen and cursor control, keeps colour', () => {
    const r = nanocellOnPty(
      ['run', '--workspace', sb.project, '--quiet', '--', 'bash', '-c', `printf '${HOSTILE}ok\\n'`],
      sb.stateRoot,
    );
    expect(r.status).toBe(0);
    const screen = r.screen;
    expect(screen).not.toContain('\x1b]');
    expect(screen).not.toContain('pwned-title');
    expect(screen).not.toMatch(/\x1b\[[0-9;]*[ABCDHJ]/);
    expect(screen).not.toContain('\x1bP');
    expect(screen).not.toContain('\xc2\x9b');
    expect(screen).toContain('\x1b[31mred\x1b[0mok');
    // The user can opt out of the filter.
    const raw = nanocellOnPty(
      [
        'run',
        '--workspace',
        sb.project,
        '--quiet',
        '--raw-output',
        '--',
        'bash',
        '-c',
        `printf '${HOSTILE}'`,
      ],
      sb.stateRoot,
    );
    expect(raw.screen).toContain('\x1b]52;c;');
  });

  it('TRM-02 a file name with a newline cannot fake a line of the diff', () => {
    const id = task(
      `printf 'x\\n' > "$(printf 'evil\\ndiff --nanocell a:Makefile b:Makefile\\n+++ b:Makefile')"`,
    );
    const r = cli(['diff', id]);
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.filter((l) => l.startsWith('diff --nanocell'))).toHaveLength(1);
    expect(lines.some((l) => /^\+\+\+ b:Makefile$/.test(l))).toBe(false);
    expect(r.stdout).toContain('"a/evil\\ndiff --nanocell a:Makefile b:Makefile\\n+++ b:Makefile"');
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    cli(['discard', id]);
  });

  it('TRM-03 escape sequences and carriage returns in a changed file are shown, not obeyed', () => {
    const id = task(`printf 'safe line\\r${HOSTILE}\\n\\xe2\\x80\\xaeevil\\n' > notes.txt`);
    const r = cli(['diff', id]);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    expect(r.stdout).toContain('+safe line\\r\\e]52;c;');
    expect(r.stdout).toContain('\\u{202e}evil');
    cli(['discard', id]);
  });

  it('TRM-04 a hostile command line is escaped in tasks, report and logs, and cut in the table', () => {
    const long = 'A'.repeat(400);
    const id = task(`: '${HOSTILE}' ${long}; exec -a "$(printf 'ls\\e]0;t\\a\\nfake')" true`);
    for (const view of [['tasks'], ['report', id], ['logs', id]]) {
      const r = cli(view);
      expect(r.status, view[0]).toBe(0);
      expect(r.stdout, view[0]).not.toMatch(RAW_CONTROL);
    }
    const row = cli(['tasks'])
      .stdout.split('\n')
      .find((l) => l.startsWith(id))!;
    expect(row).toContain('\\e]52;c;');
    expect(row.length).toBeLessThan(300);
    expect(row.endsWith('…')).toBe(true);
    // One log line per event, whatever the argv held.
    const logs = cli(['logs', id]).stdout.trimEnd().split('\n');
    const events = cli(['export', id]).stdout.trimEnd().split('\n');
    expect(logs).toHaveLength(events.length);
  });

  it('TRM-05 a symlink target and a directory name with escapes are quoted in the diff', () => {
    const id = task(
      `mkdir "$(printf 'd\\e[2Jir')"; ln -s "$(printf '/x\\e]52;c;QQ==\\a')" link; printf 'v\\n' > "$(printf 'name\\xc2\\x9b')"`,
    );
    const r = cli(['diff', id]);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    expect(r.stdout).toContain('symlink link -> "/x\\e]52;c;QQ==\\x07"');
    expect(r.stdout).toContain('new directory "d\\e[2Jir"');
    expect(r.stdout).toContain('"b/name\\x9b"');
    cli(['discard', id]);
  });

  it('TRM-06 JSON views escape C1 controls and bidi overrides too, and stay valid JSON', () => {
    const id = task(`printf 'v\\n' > "$(printf 'r\\xc2\\x9b\\xe2\\x80\\xaetxt.exe')"`);
    for (const view of [
      ['tasks', '--json'],
      ['report', id, '--json'],
      ['diff', id, '--json'],
    ]) {
      const r = cli(view);
      expect(r.stdout, view.join(' ')).not.toMatch(RAW_CONTROL);
      expect(() => JSON.parse(r.stdout) as unknown).not.toThrow();
    }
    expect(cli(['diff', id, '--json']).stdout).toContain('r\\u009b\\u202etxt.exe');
    cli(['discard', id]);
  });
});
