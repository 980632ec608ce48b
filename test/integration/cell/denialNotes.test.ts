// Denial notes (issue 14, section 4): a refusal gives the command that caused it one short line
// on its stderr, with the words the proxy's 403 uses; duplicates collapse, a flood stays
// bounded, the notes can be switched off, and they arrive while the command still runs (how
// soon is measured in bench/denial-notes.ts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import type { CellEvent } from '../../../src/cell/types.js';
import { MAX_NOTES_PER_COMMAND } from '../../../src/cell/denialNotes.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
let cell: Cell | undefined;
let events: CellEvent[];
beforeEach(() => {
  sb = makeSandbox({ 'README.md': 'hello\n' });
  events = [];
});
afterEach(async () => {
  await cell?.destroy().catch(() => undefined);
  cell = undefined;
  sb.cleanup();
});

const open = (policy: object = {}, extra: { denialNotes?: boolean } = {}) =>
  Cell.create({
    policy: resolvePolicy(parsePolicy(policy)),
    workspace: sb.project,
    stateRoot: sb.stateRoot,
    onEvent: (e) => events.push(e),
    ...extra,
  });

const notes = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('nanocell: '));
const NET = { network: { allow: ['example.com'] } };
// Only these programs may run: the shell, cp and curl (and the libraries they map).
const EXEC = { exec: { allow: ['/usr/bin/sh', '/usr/bin/dash', '/usr/bin/cp', '/usr/lib/**'] } };

describe('denial notes', () => {
  it('a denied syscall gives one line, however often it is repeated', async () => {
    cell = await open();
    const r = await cell.run(['sh', '-c', 'unshare -U true; unshare -U true; unshare -U true']);
    expect(notes(r.stderr)).toEqual([
      'nanocell: blocked syscall unshare (namespaces are not allowed)',
    ]);
    // Recorded (repeats may arrive later, folded into the monitor's per-second summary).
    expect(events.some((e) => e.type === 'syscall.denied' && e.name === 'unshare')).toBe(true);
  });

  it('an exec outside exec.allow gives one line naming the path and the key', async () => {
    cell = await open(EXEC);
    const r = await cell.run(['sh', '-c', '/usr/bin/ls /; /usr/bin/ls /; true']);
    expect(notes(r.stderr)).toEqual(['nanocell: blocked exec /usr/bin/ls (not in exec.allow)']);
  });

  it('an egress request refused by the proxy: one line, the same words as the 403 body', async () => {
    cell = await open(NET);
    const r = await cell.run([
      'sh',
      '-c',
      'curl -sS http://evil.example/; curl -sS http://evil.example/; curl -sS https://evil.example/',
    ]);
    expect(notes(r.stderr)).toEqual([
      'nanocell: blocked connect to evil.example:80 (not in network.allow)',
      'nanocell: blocked connect to evil.example:443 (not in network.allow)',
    ]);
    // curl prints the 403's body on stdout, twice: the note's very words.
    expect(r.stdout).toBe(
      'nanocell: blocked connect to evil.example:80 (not in network.allow)\n'.repeat(2),
    );
  });

  it('transparent capture: a refused connection that ignores the proxy gets its line too', async () => {
    cell = await open({ network: { allow: ['example.com'], cidrs: [] } });
    const r = await cell.run([
      'sh',
      '-c',
      "curl -sS --noproxy '*' --max-time 5 http://192.0.2.1/; curl -sS --noproxy '*' --max-time 5 http://evil.example/; true",
    ]);
    expect(notes(r.stderr)).toEqual([
      'nanocell: blocked connect to 192.0.2.1:80 (IP address not in network.cidrs)',
      'nanocell: blocked DNS lookup of evil.example (not in network.allow)',
    ]);
  });

  it('a flood of 300 denials costs one line; many distinct ones stay bounded', async () => {
    cell = await open();
    const flood = await cell.run([
      'sh',
      '-c',
      'i=0; while [ $i -lt 300 ]; do unshare -U true 2>/dev/null; i=$((i+1)); done; echo done',
    ]);
    expect(flood.stdout).toBe('done\n');
    expect(notes(flood.stderr)).toEqual([
      'nanocell: blocked syscall unshare (namespaces are not allowed)',
    ]);
    // 100 distinct refused execs, in a cell of their own (the monitor records 200 denials per
    // cell, then only counts them).
    await cell.destroy();
    cell = await open(EXEC);
    const distinct = await cell.run([
      'sh',
      '-c',
      'i=0; while [ $i -lt 100 ]; do cp /usr/bin/true /tmp/x$i; /tmp/x$i 2>/dev/null; i=$((i+1)); done; true',
    ]);
    const got = notes(distinct.stderr);
    expect(got.length).toBe(MAX_NOTES_PER_COMMAND + 1);
    expect(got.at(-1)).toBe(
      'nanocell: further denials are not shown here (the audit trail has them all)',
    );
  });

  it('names from the cell are escaped in the note', async () => {
    cell = await open(EXEC);
    const r = await cell.run([
      'sh',
      '-c',
      'cp /usr/bin/true "/tmp/a$(printf \'\\033\')[31mb"; "/tmp/a$(printf \'\\033\')[31mb"; true',
    ]);
    expect(notes(r.stderr)).toEqual([
      'nanocell: blocked exec /tmp/a\\x1b[31mb (its mount is noexec; exec.allow does not reach it, or exec.scratch is deny)',
    ]);
    expect(r.stderr).not.toContain('\x1b[31mb (');
  });

  it('goes to the command that caused it, not to another one running', async () => {
    cell = await open();
    const quiet = cell.run(['sh', '-c', 'sleep 1']);
    const noisy = await cell.run(['sh', '-c', 'unshare -U true; true']);
    expect(notes(noisy.stderr)).toHaveLength(1);
    expect(notes((await quiet).stderr)).toEqual([]);
  });

  // How soon a note follows its denial is measured in bench/denial-notes.ts, not timed here.
  it('arrives while the command still runs, not at its end', async () => {
    cell = await open();
    const x = cell.exec(['sh', '-c', 'unshare -U true; sleep 1']);
    let noted = false;
    x.stderr.on('data', (d: Buffer) => {
      if (d.toString().includes('nanocell: blocked syscall unshare')) noted = true;
    });
    x.stdout.resume();
    x.stdin.end();
    // A second command, started after the note, sees the first one still sleeping.
    await new Promise<void>((resolve) => {
      const t = setInterval(() => noted && (clearInterval(t), resolve()), 5);
    });
    const ps = await cell.run(['sh', '-c', 'ps -eo args | grep -c "^sleep 1$"']);
    expect(ps.stdout.trim()).toBe('1');
    await x.result;
  });

  it('is switched off by the library option, per command, and by the policy', async () => {
    cell = await open({}, { denialNotes: false });
    const off = await cell.run(['sh', '-c', 'unshare -U true; true']);
    expect(notes(off.stderr)).toEqual([]);
    await cell.destroy();
    cell = await open({ denialNotes: false });
    expect(notes((await cell.run(['sh', '-c', 'unshare -U true; true'])).stderr)).toEqual([]);
    await cell.destroy();
    cell = await open();
    const perCommand = await cell.run(['sh', '-c', 'unshare -U true; true'], {
      denialNotes: false,
    });
    expect(notes(perCommand.stderr)).toEqual([]);
    // Still recorded.
    // Recorded (repeats may arrive later, folded into the monitor's per-second summary).
    expect(events.some((e) => e.type === 'syscall.denied' && e.name === 'unshare')).toBe(true);
  });

  it('nanocell run --no-denial-notes prints none; without it the line is there', () => {
    const args = ['run', '--quiet', '--discard', '--workspace', sb.project];
    const cmd = ['--', 'sh', '-c', 'unshare -U true; true'];
    const on = nanocell([...args, ...cmd], { stateRoot: sb.stateRoot });
    expect(on.status).toBe(0);
    expect(notes(on.stderr)).toEqual([
      'nanocell: blocked syscall unshare (namespaces are not allowed)',
    ]);
    const off = nanocell([...args, '--no-denial-notes', ...cmd], { stateRoot: sb.stateRoot });
    expect(off.status).toBe(0);
    expect(notes(off.stderr)).toEqual([]);
    expect(off.stderr).toMatch(/^unshare: /m);
  });
});
