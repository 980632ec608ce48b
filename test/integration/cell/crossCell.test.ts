// Cells cannot see each other's files, processes or sockets, in one session or across sessions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, type Sandbox } from '../../helpers/cells.js';

let a: Sandbox;
let b: Sandbox;
let cellA: Cell;
let cellB: Cell;
let cellC: Cell;

beforeAll(async () => {
  a = makeSandbox({ 'a-secret.txt': 'project A data\n' });
  b = makeSandbox({ 'b.txt': 'b\n' });
  const policy = resolvePolicy(parsePolicy({}));
  // A and B share a session and a state root; C is another session on B's project.
  [cellA, cellB, cellC] = await Promise.all([
    Cell.create({ policy, workspace: a.project, stateRoot: a.stateRoot, session: 's1' }),
    Cell.create({ policy, workspace: b.project, stateRoot: a.stateRoot, session: 's1' }),
    Cell.create({ policy, workspace: b.project, stateRoot: a.stateRoot, session: 's2' }),
  ]);
});
afterAll(async () => {
  await Promise.all([cellA, cellB, cellC].map((c) => c?.destroy()));
  a?.cleanup();
  b?.cleanup();
});

describe('cross-cell isolation', () => {
  it('gives each cell its own host uid range', () => {
    const bases = new Set([cellA.hostUidBase, cellB.hostUidBase, cellC.hostUidBase]);
    expect(bases.size).toBe(3);
  });

  it("does not show one cell's files to another", async () => {
    await cellA.run([
      'sh',
      '-c',
      'echo a-tmp > /tmp/mark; echo a-home > ~/mark; echo a-ws > ws-mark',
    ]);
    for (const other of [cellB, cellC]) {
      const r = await other.run([
        'sh',
        '-c',
        `cat /tmp/mark ~/mark ws-mark ${a.project}/a-secret.txt 2>&1; ls ${a.stateRoot}/cells 2>&1`,
      ]);
      expect(r.stdout).not.toMatch(/a-tmp|a-home|a-ws|project A data/);
    }
    // Same project, different cells: B's edit is invisible to C (separate upper layers).
    await cellB.run(['sh', '-c', 'echo changed-by-b >> b.txt']);
    expect((await cellC.run(['cat', 'b.txt'])).stdout).toBe('b\n');
  });

  it("does not show one cell's processes or let it signal them", async () => {
    const bg = cellA.exec(['sleep', '300']);
    const pid = await new Promise<number>((resolve) => setTimeout(resolve, 300, 0));
    void pid;
    const r = await cellB.run([
      'sh',
      '-c',
      'ps -eo pid,comm --no-headers | grep -c sleep; kill -9 -1 2>&1; echo done',
    ]);
    expect(r.stdout.split('\n')[0]).toBe('0');
    expect((await cellA.run(['sh', '-c', 'pgrep -c sleep'])).stdout.trim()).toBe('1');
    bg.kill(9);
    await bg.result;
  });

  it('keeps abstract and loopback sockets private to each cell', async () => {
    const server = cellA.exec([
      'python3',
      '-c',
      [
        'import socket, time',
        's = socket.socket(socket.AF_UNIX); s.bind("\\0nanocell-test"); s.listen()',
        't = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("127.0.0.1", 45678)); t.listen()',
        'print("up", flush=True); time.sleep(30)',
      ].join('\n'),
    ]);
    await new Promise<void>((resolve) => server.stdout.once('data', () => resolve()));
    const probe = await cellB.run([
      'python3',
      '-c',
      [
        'import socket',
        'for fam, addr in ((socket.AF_UNIX, "\\0nanocell-test"), (socket.AF_INET, ("127.0.0.1", 45678))):',
        '    try:',
        '        socket.socket(fam).connect(addr); print("CONNECTED", addr)',
        '    except OSError as e: print("refused", e.errno)',
      ].join('\n'),
    ]);
    expect(probe.stdout).not.toContain('CONNECTED');
    expect(probe.stdout.match(/refused/g)).toHaveLength(2);
    server.kill(9);
    await server.result;
  });
});
