// `nanocell mcp` as an agent meets it: the SDK's own Client over a real stdio connection to a
// real `nanocell mcp` process, running real cells.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, leftovers, makeSandbox, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
let client: Client | undefined;
beforeEach(() => {
  sb = makeSandbox({ 'README.md': 'hello\n', 'src/main.py': 'print("hi")\n', '.env': 'TOKEN=x\n' });
});
afterEach(async () => {
  await client?.close().catch(() => undefined);
  client = undefined;
  sb.cleanup();
});

async function connect(args: string[] = []): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'mcp', ...args],
    cwd: sb.project,
    env: { ...(process.env as Record<string, string>), NANOCELL_STATE_ROOT: sb.stateRoot },
    stderr: 'pipe',
  });
  const c = new Client({ name: 'nanocell-test', version: '0.0.0' });
  await c.connect(transport);
  client = c;
  return c;
}

type Reply = { content: Array<{ type: string; text: string }>; isError?: boolean };

// Tool results are JSON of many shapes; the tests check them field by field with matchers.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function call(c: Client, name: string, args: Record<string, unknown>): Promise<any> {
  const r = (await c.callTool({ name, arguments: args })) as Reply;
  expect(r.isError, r.content[0]!.text).toBeFalsy();
  return JSON.parse(r.content[0]!.text);
}

/** A call that must fail as a tool error; returns the error text. */
async function refused(c: Client, name: string, args: Record<string, unknown>): Promise<string> {
  const r = (await c.callTool({ name, arguments: args })) as Reply;
  expect(r.isError).toBe(true);
  return r.content[0]!.text;
}

describe('nanocell mcp', () => {
  it('lists its tools, and offers apply only with --allow-apply', async () => {
    const c = await connect();
    const names = (await c.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual([
      'create_cell',
      'destroy_cell',
      'diff',
      'edit_file',
      'kill_command',
      'list_files',
      'poll_command',
      'read_file',
      'run',
      'start_command',
      'write_file',
    ]);
    await c.close();
    const withApply = await connect(['--allow-apply']);
    expect((await withApply.listTools()).tools.map((t) => t.name)).toContain('apply');
  });

  it('runs commands with a persistent shell, caps output, and round-trips files', async () => {
    const c = await connect();
    const { cell_id } = (await call(c, 'create_cell', {})) as { cell_id: string };
    const first = await call(c, 'run', { cell_id, command: 'echo out; echo err >&2; exit 3' });
    expect(first).toMatchObject({
      exit_code: 3,
      stdout: 'out\n',
      stderr: 'err\n',
      truncated: false,
    });

    // cwd and exported variables persist from one run to the next, even across `exit`.
    await call(c, 'run', { cell_id, command: 'cd src && export GREETING=hello-there; exit 0' });
    const second = await call(c, 'run', { cell_id, command: 'pwd; echo "$GREETING"' });
    expect(second.stdout).toBe(`${sb.project}/src\nhello-there\n`);

    const big = await call(c, 'run', {
      cell_id,
      command: 'yes x | head -c 5000',
      max_output_bytes: 100,
    });
    expect(big).toMatchObject({ exit_code: 0, truncated: true });
    expect((big.stdout as string).length).toBe(100);

    const slow = await call(c, 'run', { cell_id, command: 'sleep 30', timeout_ms: 500 });
    expect(slow).toMatchObject({ exit_code: 124, timed_out: true });

    await call(c, 'write_file', { cell_id, path: 'notes/todo.txt', content: 'one\ntwo\n' });
    expect(
      (await call(c, 'run', { cell_id, command: `cat ${sb.project}/notes/todo.txt` })).stdout,
    ).toBe('one\ntwo\n');
    await call(c, 'edit_file', {
      cell_id,
      path: 'notes/todo.txt',
      old_string: 'two',
      new_string: 'three',
    });
    expect(await call(c, 'read_file', { cell_id, path: 'notes/todo.txt' })).toMatchObject({
      content: 'one\nthree\n',
      truncated: false,
    });
    expect(await call(c, 'read_file', { cell_id, path: 'README.md', max_bytes: 2 })).toMatchObject({
      content: 'he',
      truncated: true,
    });
    const notUnique = await refused(c, 'edit_file', {
      cell_id,
      path: 'notes/todo.txt',
      old_string: 'e',
      new_string: 'E',
    });
    expect(notUnique).toMatch(/occurs 3 times.*replace_all/);
    const listed = (await call(c, 'list_files', { cell_id })) as {
      entries: Array<{ name: string }>;
    };
    // The default secret excludes hold for the file tools too.
    expect(listed.entries.map((e) => e.name)).toEqual(['README.md', 'notes', 'src']);

    const diff = (await call(c, 'diff', { cell_id })) as { diff: string };
    expect(diff.diff).toContain('+three');
    // A live diff leaves the project alone.
    expect(fs.existsSync(path.join(sb.project, 'notes'))).toBe(false);

    const job = (await call(c, 'start_command', {
      cell_id,
      command: 'echo started; sleep 30',
    })) as {
      job_id: string;
    };
    let polled: Record<string, unknown> = {};
    for (let i = 0; i < 50 && !String(polled.stdout ?? '').includes('started'); i++) {
      polled = (await call(c, 'poll_command', { cell_id, job_id: job.job_id })) as Record<
        string,
        unknown
      >;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(polled).toMatchObject({ running: true, stdout: 'started\n' });
    await call(c, 'kill_command', { cell_id, job_id: job.job_id, signal: 9 });
    for (let i = 0; i < 50 && polled.running; i++) {
      polled = (await call(c, 'poll_command', { cell_id, job_id: job.job_id })) as Record<
        string,
        unknown
      >;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(polled).toMatchObject({ running: false, exit_code: 137 });

    const destroyed = await call(c, 'destroy_cell', { cell_id });
    expect(destroyed.change_set).toMatchObject({ status: 'ok' });
    expect((await call(c, 'diff', { cell_id })).diff).toContain('+three');
    expect(await refused(c, 'run', { cell_id, command: 'true' })).toMatch(/no live cell/);
    expect(leftovers(sb.stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });
  });

  it('refuses paths outside the workspace', async () => {
    const c = await connect();
    const { cell_id } = (await call(c, 'create_cell', {})) as { cell_id: string };
    for (const p of ['/etc/passwd', '../../etc/passwd']) {
      expect(await refused(c, 'read_file', { cell_id, path: p })).toMatch(
        /outside the cell's workspace/,
      );
    }
    expect(await refused(c, 'write_file', { cell_id, path: '/tmp/x', content: 'x' })).toMatch(
      /outside/,
    );
    expect(await refused(c, 'read_file', { cell_id, path: '.env' })).toMatch(/no such file/);
    await call(c, 'destroy_cell', { cell_id });
  });

  it("applies a destroyed cell's change set with --allow-apply, and cleans up on disconnect", async () => {
    const c = await connect(['--allow-apply']);
    const { cell_id } = await call(c, 'create_cell', { workspace: sb.project });
    await call(c, 'write_file', { cell_id, path: 'added.txt', content: 'from the agent\n' });
    expect(await refused(c, 'apply', { cell_id })).toMatch(/destroy_cell the cell first/);
    await call(c, 'destroy_cell', { cell_id });
    expect(await call(c, 'apply', { cell_id })).toMatchObject({ applied: 1 });
    expect(fs.readFileSync(path.join(sb.project, 'added.txt'), 'utf8')).toBe('from the agent\n');

    // A cell the agent never destroyed goes with the connection.
    await call(c, 'create_cell', {});
    expect(fs.readdirSync(path.join(sb.stateRoot, 'cells'))).toHaveLength(1);
    await c.close();
    client = undefined;
    for (let i = 0; i < 100 && fs.readdirSync(path.join(sb.stateRoot, 'cells')).length > 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(leftovers(sb.stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });
  });

  it('answers a malformed request with a clear error and keeps serving', async () => {
    const child = spawn(process.execPath, [CLI, 'mcp'], {
      cwd: sb.project,
      env: { ...process.env, NANOCELL_STATE_ROOT: sb.stateRoot },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts.filter(Boolean));
    });
    const reply = async (id: number | null) => {
      for (let i = 0; i < 100; i++) {
        const hit = lines.map((l) => JSON.parse(l) as { id?: unknown }).find((m) => m.id === id);
        if (hit) return hit as Record<string, unknown>;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no reply to ${id}; got ${lines.join(' | ')}`);
    };
    const send = (m: unknown) =>
      child.stdin.write(`${typeof m === 'string' ? m : JSON.stringify(m)}\n`);
    try {
      send({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 't', version: '0' },
        },
      });
      await reply(1);
      send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      send('{this is not json');
      const parseError = await reply(null);
      expect(parseError.error).toMatchObject({ code: -32700, message: /parse error/ });
      send({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'run', arguments: { command: 42 } },
      });
      const bad = await reply(2);
      expect(JSON.stringify(bad)).toMatch(/cell_id|command|invalid/i);
      send({ jsonrpc: '2.0', id: 3, method: 'no/such/method' });
      expect((await reply(3)).error).toMatchObject({ code: -32601 });
      send({ jsonrpc: '2.0', id: 4, method: 'tools/list' });
      expect(JSON.stringify(await reply(4))).toContain('create_cell');
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('prints and writes client configurations', async () => {
    const { execFileSync } = await import('node:child_process');
    const printed = execFileSync(process.execPath, [CLI, 'mcp', '--install', 'claude'], {
      cwd: sb.project,
      encoding: 'utf8',
    });
    expect(printed).toContain('"mcpServers"');
    expect(fs.existsSync(path.join(sb.project, '.mcp.json'))).toBe(false);
    fs.writeFileSync(
      path.join(sb.project, '.mcp.json'),
      '{"mcpServers":{"other":{"command":"x"}}}',
    );
    execFileSync(process.execPath, [CLI, 'mcp', '--install', 'claude', '--write'], {
      cwd: sb.project,
    });
    const doc = JSON.parse(fs.readFileSync(path.join(sb.project, '.mcp.json'), 'utf8')) as {
      mcpServers: Record<string, { command: string; args: string[] }>;
    };
    expect(Object.keys(doc.mcpServers).sort()).toEqual(['nanocell', 'other']);
    expect(doc.mcpServers.nanocell!.args.slice(-1)).toEqual(['mcp']);
    const codex = execFileSync(process.execPath, [CLI, 'mcp', '--install', 'codex'], {
      encoding: 'utf8',
    });
    expect(codex).toMatch(/\[mcp_servers\.nanocell\]\ncommand = ".*"\nargs = \[.*"mcp"\]/);
  });
});
