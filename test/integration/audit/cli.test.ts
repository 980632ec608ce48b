// The audit views, run through a real commander program against a real store.
import Database from 'better-sqlite3';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditStore, newTaskId } from '../../../src/audit/store.js';
import { registerAuditCommands } from '../../../src/cli/auditCommands.js';
import { NanocellError } from '../../../src/util/errors.js';
import { sampleInputs } from '../../unit/audit/samples.js';
import { tempStateRoot } from './helpers/tempStore.js';

let env: ReturnType<typeof tempStateRoot>;
let store: AuditStore;
beforeEach(() => {
  env = tempStateRoot();
  store = AuditStore.open(env.dbPath);
  process.exitCode = undefined;
});
afterEach(() => {
  process.exitCode = undefined;
  store.close();
  env.cleanup();
});

class Capture {
  text = '';
  isTTY: boolean;
  columns = 80;
  constructor(tty = false) {
    this.isTTY = tty;
  }
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

async function run(args: string[], opts: { tty?: boolean } = {}): Promise<string> {
  const out = new Capture(opts.tty);
  const program = new Command('nanocell').exitOverride();
  registerAuditCommands(program, {
    openStore: () => AuditStore.open(env.dbPath),
    stdout: out,
    followIntervalMs: 20,
  });
  await program.parseAsync(args, { from: 'user' });
  return out.text;
}

function recordTask(session = 's1', end = true): string {
  const id = newTaskId();
  store.createTask({
    id,
    session,
    command: ['sh', '-c', 'make test'],
    workspace: '/proj',
    ownerPid: process.pid,
  });
  for (const e of sampleInputs) {
    if (e.type !== 'task.created' && e.type !== 'task.exited') store.append(id, e);
  }
  store.append(id, { type: 'fs.change', path: 'dist/out.js', kind: 'added', size: 2048 });
  if (end) {
    store.endTask(id, {
      status: 'failed',
      endReason: 'oom',
      exitCode: 137,
      report: {
        resources: { peakMemoryBytes: 512 * 1024 * 1024, peakPids: 9, cpuTimeMs: 1500 },
        limits: { memory: 536870912, pids: 64 },
      },
    });
  }
  return id;
}

describe('nanocell tasks', () => {
  it('prints aligned columns, newest first, and filters', async () => {
    const a = recordTask('alpha');
    const b = recordTask('beta', false);
    store.flush(); // what the recorder's 50 ms timer does for a live task
    const text = await run(['tasks']);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^TASK\s+CREATED\s+DURATION\s+STATUS\s+REASON\s+EXIT\s+SESSION\s+EVENTS\s+CHANGES\s+COMMAND$/,
    );
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain(b);
    expect(lines[1]).toMatch(/running\s+-\s+-\s+beta\s+11\s+-\s+sh -c "make test"$/);
    expect(lines[2]).toMatch(/failed\s+oom\s+137\s+alpha\s+12\s+-\s+sh -c "make test"$/);
    // Aligned: every column starts at the same offset on every line.
    const col = (l: string) =>
      l.indexOf('SESSION') >= 0 ? l.indexOf('SESSION') : l.search(/alpha|beta/);
    expect(new Set(lines.map(col)).size).toBe(1);
    expect(text).not.toContain('\u001b[');

    expect(await run(['tasks', '--session', 'alpha'])).toContain(a);
    expect(await run(['tasks', '--session', 'alpha'])).not.toContain(b);
    expect(await run(['tasks', '--status', 'running'])).not.toContain(a);
    expect(await run(['tasks', '--since', '1h'])).toContain(a);
    expect(await run(['tasks', '--session', 'nobody'])).toBe('no tasks recorded\n');
  });

  it('prints JSON for scripts, and colour only on a TTY without NO_COLOR', async () => {
    const a = recordTask();
    const rows = JSON.parse(await run(['tasks', '--json'])) as { id: string; status: string }[];
    expect(rows).toMatchObject([{ id: a, status: 'failed', endReason: 'oom', exitCode: 137 }]);
    const saved = process.env.NO_COLOR;
    try {
      delete process.env.NO_COLOR;
      expect(await run(['tasks'], { tty: true })).toContain('\u001b[');
      process.env.NO_COLOR = '1';
      expect(await run(['tasks'], { tty: true })).not.toContain('\u001b[');
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
  });

  it('refuses a bad status or duration with a NanocellError', async () => {
    await expect(run(['tasks', '--status', 'weird'])).rejects.toThrow(NanocellError);
    await expect(run(['tasks', '--since', 'yesterday'])).rejects.toThrow(/--since/);
  });
});

describe('nanocell logs', () => {
  it('prints one human line per event, or JSON Lines', async () => {
    const id = recordTask();
    const text = await run(['logs', id.slice(0, 12)]);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(12);
    expect(lines[0]).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3}\s+#0\s+task\.created\s+created: sh -c "make test" in \/proj$/,
    );
    expect(text).toMatch(
      /#3\s+syscall\.denied\s+mount \(nr 165, x86_64\) by \/usr\/bin\/bash pid 9 -> EPERM \(×3\)/,
    );
    expect(lines.at(-1)).toMatch(/#11\s+task\.exited\s+ended: oom, exit 137/);
    const json = (await run(['logs', id, '--json']))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number });
    expect(json.map((e) => e.seq)).toEqual([...Array(12).keys()]);
  });

  it('follows a running task until it ends', async () => {
    const id = recordTask('s1', false);
    const following = run(['logs', id, '--follow']);
    await new Promise((r) => setTimeout(r, 100));
    store.append(id, {
      type: 'net.denied',
      host: 'late.example',
      port: 80,
      reason: 'denied',
      protocol: 'http',
    });
    store.flush();
    await new Promise((r) => setTimeout(r, 100));
    store.endTask(id, { status: 'exited', endReason: 'exited', exitCode: 0 });
    const text = await following;
    expect(text).toContain('late.example:80');
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/task\.exited\s+ended: exited, exit 0/);
  });

  it('fails with one line for an unknown task', async () => {
    recordTask();
    const err = await run(['logs', 'zzzzzz']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NanocellError);
    expect((err as NanocellError).oneLine()).toBe(
      'no task "zzzzzz" in the audit trail (fix: list recorded tasks with `nanocell tasks`)',
    );
  });
});

describe('nanocell report', () => {
  it('summarizes what ran, what was denied, what changed, resources and the end', async () => {
    const id = recordTask();
    store.close();
    store = AuditStore.open(env.dbPath, { maxEventsPerTask: 5 });
    const text = await run(['report', id]);
    expect(text).toContain(`Task ${id}`);
    expect(text).toMatch(/command\s+sh -c "make test"/);
    expect(text).toMatch(/Ran \(exec.*unverified\)\n\s+git status\s+\/usr\/bin\/git/);
    expect(text).toMatch(/network\s+evil\.example:443 \(not in allowlist\)/);
    expect(text).toMatch(/syscalls\s+3× mount by \/usr\/bin\/bash -> EPERM/);
    expect(text).toMatch(/exec\s+none recorded/);
    expect(text).toMatch(/registry\.npmjs\.org:443\s+1 connection, 10 B up, 2\.0 KiB down/);
    expect(text).toMatch(/1 added, 1 modified, 0 deleted/);
    expect(text).toContain('+ dist/out.js');
    expect(text).toMatch(/peak memory 512 MiB · peak pids 9 · cpu 1\.50s/);
    expect(text).toMatch(/limits\s+memory 512 MiB, pids 64/);
    expect(text).toMatch(/hit\s+oom: memory 512 MiB/);
    expect(text).toMatch(/degraded\s+cgroups: no delegation/);
    expect(text).toMatch(
      /Why it ended\n\s+the cell ran out of memory and was killed \(memory 512 MiB\)/,
    );
    expect(text).toMatch(/12 events stored/);

    const json = JSON.parse(await run(['report', id, '--json'])) as {
      task: { id: string };
      denied: { network: unknown[] };
    };
    expect(json.task.id).toBe(id);
    // The refused connection and the refused DNS name.
    expect(json.denied.network).toHaveLength(2);
  });

  it('shows how many events were only counted past the cap', async () => {
    store.close();
    store = AuditStore.open(env.dbPath, { maxEventsPerTask: 3 });
    const id = recordTask();
    const text = await run(['report', id]);
    // 7 events past the cap; aggregated ones count as what they stand for.
    const row = store.getTask(id)!;
    expect(row.droppedEvents).toBeGreaterThan(7);
    expect(text).toContain(
      `${row.droppedEvents} more events were only counted, past the per-task cap`,
    );
  });
});

describe('nanocell export and verify', () => {
  it('exports JSON Lines that match the stored events', async () => {
    const id = recordTask();
    const lines = (await run(['export', id])).trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l))).toEqual(store.events(id));
  });

  it('exits 0 on an intact chain and 1 on a tampered one, with a one-line verdict', async () => {
    const id = recordTask();
    expect(await run(['verify', id])).toBe(`ok: task ${id}: hash chain intact (12 events)\n`);
    expect(process.exitCode).toBeUndefined();
    const raw = new Database(env.dbPath);
    raw
      .prepare(
        "UPDATE events SET payload = replace(payload, 'mount', 'mount2') WHERE task_id = ? AND seq = 3",
      )
      .run(id);
    raw.close();
    expect(await run(['verify', id])).toBe(
      `TAMPERED: task ${id}: chain broken at event 3: hash does not match the event\n`,
    );
    expect(process.exitCode).toBe(1);
    expect(JSON.parse(await run(['verify', id, '--json']))).toMatchObject({
      taskId: id,
      ok: false,
      brokenAt: 3,
    });
  });
});
