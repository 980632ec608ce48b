// The attack suite's harness: real cells whose raw events go through the same audit sink as a
// task's (toAuditEvents → AuditStore), so every test can assert what the task's audit trail
// says; host snapshots to prove the host was unharmed; victim cells to prove other cells were.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuditStore, newTaskId } from '../../src/audit/store.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { Cell } from '../../src/cell/cell.js';
import type { CellSummary } from '../../src/cell/types.js';
import { DenialSummaries, toAuditEvents } from '../../src/audit/sink.js';
import { parsePolicy, resolvePolicy } from '../../src/policy/load.js';
import { SYSCALL_NUMBERS } from '../../src/seccomp/syscall-numbers.generated.js';
import { leftovers, makeSandbox, TEST_ROOT, type Sandbox } from '../helpers/cells.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ATK_PY = fs.readFileSync(path.join(HERE, 'fixtures', 'atk.py'), 'utf8');
const ARCH = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const NR_JSON = JSON.stringify((SYSCALL_NUMBERS as Record<string, Record<string, number>>)[ARCH]);

export interface Attempt {
  a: string;
  t: string;
  ok: boolean;
  errno: number;
  out: string;
}

export const ENOENT = 2;
export const EPERM = 1;
export const EACCES = 13;
export const EROFS = 30;

/** Parses atk.py's JSON lines. */
export function attempts(stdout: string): Attempt[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Attempt);
}

/** A cell plus its task's audit store, as `runTask` keeps them. */
export class AttackCell {
  private ended?: Promise<CellSummary>;

  private constructor(
    readonly sb: Sandbox,
    readonly store: AuditStore,
    readonly taskId: string,
    readonly cell: Cell,
  ) {}

  static async start(
    o: {
      files?: Record<string, string>;
      policy?: object;
      prepare?: (project: string) => void;
      /** A state root of the test's choosing (e.g. inside the project); default: the sandbox's. */
      stateRoot?: (project: string) => string;
    } = {},
  ): Promise<AttackCell> {
    const sb = makeSandbox({ 'atk.py': ATK_PY, 'nr.json': NR_JSON, ...(o.files ?? {}) });
    let store: AuditStore | undefined;
    try {
      o.prepare?.(sb.project);
      const stateRoot = o.stateRoot?.(sb.project) ?? sb.stateRoot;
      fs.mkdirSync(stateRoot, { recursive: true });
      store = AuditStore.open(path.join(stateRoot, 'nanocell.db'));
      const s = store;
      const taskId = newTaskId();
      s.createTask({ id: taskId, session: 'attacks', command: ['attack'], ownerPid: process.pid });
      // The same mapping runTask uses: raw cell events → typed, coerced audit events.
      const summaries = new DenialSummaries();
      const cell = await Cell.create({
        policy: resolvePolicy(parsePolicy(o.policy ?? {})),
        workspace: sb.project,
        stateRoot,
        taskId,
        session: 'attacks',
        // This harness keeps the task's record itself (the store the checks read).
        record: false,
        onEvent: (e) => {
          for (const a of toAuditEvents(e, summaries)) s.append(taskId, a);
        },
      });
      return new AttackCell(sb, s, taskId, cell);
    } catch (e) {
      store?.close();
      sb.cleanup();
      throw e;
    }
  }

  get project(): string {
    return this.sb.project;
  }

  run(argv: string[], opts: { env?: Record<string, string>; input?: string } = {}) {
    return this.cell.run(argv, opts);
  }

  sh(script: string) {
    return this.cell.run(['bash', '-c', script]);
  }

  /** Runs atk.py with the given action and arguments; returns the parsed attempts. */
  async atk(...args: string[]): Promise<Attempt[]> {
    const r = await this.cell.run(['python3', 'atk.py', ...args]);
    const out = attempts(r.stdout);
    if (out.length === 0) throw new Error(`atk.py printed nothing: ${r.stdout} ${r.stderr}`);
    return out;
  }

  /** The task's audit events as stored (flushed first). */
  events(): AuditEvent[] {
    this.store.flush();
    return this.store.events(this.taskId);
  }

  /** Waits until the audit trail holds an event matching `pred` (monitor events are async). */
  async recorded(pred: (e: AuditEvent) => boolean, ms = 4000): Promise<AuditEvent> {
    const until = Date.now() + ms;
    for (;;) {
      const hit = this.events().find(pred);
      if (hit) return hit;
      if (Date.now() > until) {
        const types = this.events().map((e) => `${e.type}:${JSON.stringify(e).slice(0, 160)}`);
        throw new Error(`no matching audit event; last: ${types.slice(-8).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** The exec of a command whose argv contains every needle was recorded. */
  execRecorded(...needles: string[]): Promise<AuditEvent> {
    return this.recorded(
      (e) => e.type === 'exec' && needles.every((n) => e.argv.some((a) => a.includes(n))),
    );
  }

  /** A denial of syscall `name` was recorded. */
  deniedRecorded(name: string): Promise<AuditEvent> {
    return this.recorded((e) => e.type === 'syscall.denied' && e.name === name);
  }

  /** Destroys the cell, ends the task in the store, and returns what the cell left behind. */
  async end(): Promise<{ summary: CellSummary; left: Record<string, string[]> }> {
    const base = this.cell.hostUidBase;
    this.ended ??= this.cell.destroy();
    const summary = await this.ended;
    if (!this.store.getTask(this.taskId)?.endedAt) {
      this.store.append(this.taskId, {
        type: 'task.exited',
        exitCode: 0,
        endReason: summary.endReason ?? 'exited',
        durationMs: summary.durationMs,
      });
      this.store.endTask(this.taskId, {
        status: 'exited',
        endReason: summary.endReason ?? 'exited',
        exitCode: 0,
        report: {},
      });
    }
    this.store.flush();
    return { summary, left: leftovers(this.sb.stateRoot, base === undefined ? [] : [base]) };
  }

  /** end(), then close the store and remove the sandbox; safe to call twice. */
  async dispose(): Promise<void> {
    try {
      await this.end();
    } catch {
      // the test already failed or the cell is gone
    }
    try {
      this.store.close();
    } catch {
      // closed
    }
    this.sb.cleanup();
  }
}

/** Non-empty leftover lists. */
export function dirty(left: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(left).filter(([, v]) => v.length > 0));
}

/**
 * Files on the host the attacks aim at: a fake home with SSH and cloud keys, a sentinel dir an
 * attack might write into, and real host files. `check()` returns what changed since.
 */
export class HostSentinels {
  readonly dir: string;
  readonly home: string;
  readonly drop: string;
  private readonly before: Map<string, string>;
  static readonly WATCHED = ['/etc/passwd', '/etc/shadow', '/etc/hostname', '/root/.bashrc'];

  constructor() {
    fs.mkdirSync(TEST_ROOT, { recursive: true, mode: 0o755 });
    this.dir = fs.mkdtempSync(path.join(TEST_ROOT, `host-${process.pid}-`));
    fs.chmodSync(this.dir, 0o755);
    this.home = path.join(this.dir, 'home');
    this.drop = path.join(this.dir, 'drop');
    fs.mkdirSync(path.join(this.home, '.ssh'), { recursive: true });
    fs.mkdirSync(path.join(this.home, '.aws'), { recursive: true });
    fs.mkdirSync(this.drop);
    fs.writeFileSync(path.join(this.home, '.ssh', 'id_ed25519'), 'HOST-SSH-KEY-SENTINEL\n');
    fs.writeFileSync(path.join(this.home, '.aws', 'credentials'), 'HOST-AWS-SENTINEL\n');
    fs.writeFileSync(path.join(this.drop, 'canary'), 'unchanged\n');
    this.before = this.snapshot();
  }

  private snapshot(): Map<string, string> {
    const m = new Map<string, string>();
    const walk = (p: string) => {
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st) return;
      if (st.isDirectory()) {
        m.set(p, `dir ${st.mode}`);
        for (const e of fs.readdirSync(p)) walk(path.join(p, e));
      } else {
        const body = st.isFile()
          ? fs.readFileSync(p)
          : st.isSymbolicLink()
            ? Buffer.from(fs.readlinkSync(p))
            : Buffer.alloc(0);
        m.set(p, `${st.mode} ${st.mtimeMs} ${createHash('sha256').update(body).digest('hex')}`);
      }
    };
    walk(this.dir);
    for (const f of HostSentinels.WATCHED) walk(f);
    return m;
  }

  /** Paths added, removed or changed on the host since construction. */
  changes(): string[] {
    const now = this.snapshot();
    const out: string[] = [];
    for (const [p, v] of now) if (this.before.get(p) !== v) out.push(p);
    for (const p of this.before.keys()) if (!now.has(p)) out.push(`-${p}`);
    return out;
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Another live cell with a secret in its project, a file in /tmp and a long-running process:
 * proof that an attack from a neighbour left it untouched.
 */
export class Victim {
  private constructor(readonly ac: AttackCell) {}

  static async start(): Promise<Victim> {
    const ac = await AttackCell.start({
      files: { 'victim-secret.txt': 'VICTIM-PROJECT-SECRET\n' },
    });
    await ac.sh('echo VICTIM-TMP > /tmp/victim-tmp; echo VICTIM-HOME > ~/victim-home');
    ac.cell.exec(['sleep', '3600']);
    const v = new Victim(ac);
    for (let i = 0; i < 50 && !(await v.sleeping()); i++)
      await new Promise((r) => setTimeout(r, 50));
    return v;
  }

  get project(): string {
    return this.ac.project;
  }

  get stateRoot(): string {
    return this.ac.sb.stateRoot;
  }

  private async sleeping(): Promise<boolean> {
    const r = await this.ac.sh('pgrep -x sleep >/dev/null && echo yes');
    return r.stdout.trim() === 'yes';
  }

  /** Its files and its process are still there, unchanged. */
  async intact(): Promise<boolean> {
    const r = await this.ac.sh('cat victim-secret.txt /tmp/victim-tmp ~/victim-home');
    return (
      r.stdout === 'VICTIM-PROJECT-SECRET\nVICTIM-TMP\nVICTIM-HOME\n' &&
      (await this.sleeping()) &&
      fs.readFileSync(path.join(this.project, 'victim-secret.txt'), 'utf8') ===
        'VICTIM-PROJECT-SECRET\n'
    );
  }

  dispose(): Promise<void> {
    return this.ac.dispose();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
