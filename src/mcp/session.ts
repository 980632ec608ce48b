// The cells one MCP connection owns, and their background commands. Everything is destroyed
// when the connection ends: an agent that goes away leaves no cell running.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Cell } from '../cell/cell.js';
import type { CellExec, CellSummary, ExecOutcome } from '../cell/types.js';
import { loadPolicyFile, resolvePolicy } from '../policy/load.js';
import type { PolicyFile } from '../policy/schema.js';
import { NanocellError } from '../util/errors.js';
import { CappedBuffer } from './output.js';
import { backgroundArgv, COMMAND_VAR, runArgv } from './shell.js';

/** Background output kept between two polls. */
const JOB_BUFFER_BYTES = 1024 * 1024;
const SIGKILL = 9;

export interface SessionOptions {
  stateRoot?: string;
  /** Layered under every create_cell's own policy file. */
  basePolicy?: PolicyFile;
}

interface Job {
  exec: CellExec;
  stdout: CappedBuffer;
  stderr: CappedBuffer;
  outcome?: ExecOutcome;
}

interface Entry {
  cell: Cell;
  jobs: Map<string, Job>;
}

export interface RunResult {
  exitCode: number;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

export class McpSession {
  private readonly cells = new Map<string, Entry>();
  /** Change sets of destroyed cells, by cell id: what `diff` shows after destroy. */
  readonly ended = new Map<string, { taskId: string; workspace: string; changeDir?: string }>();

  constructor(private readonly o: SessionOptions) {}

  async create(workspace: string, policyFile?: string, allowNet?: string[]): Promise<Cell> {
    const layers = [this.o.basePolicy ?? {}, ...(policyFile ? [loadPolicyFile(policyFile)] : [])];
    const cell = await Cell.create({
      policy: resolvePolicy(...layers),
      workspace: path.resolve(workspace),
      stateRoot: this.o.stateRoot,
      session: 'mcp',
      extraAllowNet: allowNet,
    });
    this.cells.set(cell.id, { cell, jobs: new Map() });
    return cell;
  }

  get(cellId: string): Cell {
    return this.entry(cellId).cell;
  }

  private entry(cellId: string): Entry {
    const e = this.cells.get(cellId);
    if (!e) {
      throw new NanocellError(
        `no live cell ${JSON.stringify(cellId)} in this session`,
        'create one with create_cell and pass its cell_id',
        'USAGE',
      );
    }
    return e;
  }

  /** A shell command to completion, in the cell's persistent shell. */
  async run(
    cellId: string,
    command: string,
    o: { timeoutMs: number; maxOutputBytes: number; env?: Record<string, string> },
  ): Promise<RunResult> {
    const x = this.get(cellId).exec(runArgv(), { env: { ...o.env, [COMMAND_VAR]: command } });
    x.stdin.end();
    const out = new CappedBuffer(o.maxOutputBytes).attach(x.stdout);
    const err = new CappedBuffer(o.maxOutputBytes).attach(x.stderr);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      x.kill(SIGKILL);
    }, o.timeoutMs);
    const r = await x.result.finally(() => clearTimeout(timer));
    const a = out.take();
    const b = err.take();
    return {
      exitCode: timedOut ? 124 : r.exitCode,
      timedOut,
      stdout: a.text,
      stderr: b.text,
      truncated: a.truncated || b.truncated || r.outputTruncated,
    };
  }

  start(cellId: string, command: string, env?: Record<string, string>): string {
    const e = this.entry(cellId);
    const exec = e.cell.exec(backgroundArgv(), { env: { ...env, [COMMAND_VAR]: command } });
    exec.stdin.end();
    const job: Job = {
      exec,
      stdout: new CappedBuffer(JOB_BUFFER_BYTES).attach(exec.stdout),
      stderr: new CappedBuffer(JOB_BUFFER_BYTES).attach(exec.stderr),
    };
    void exec.result.then((r) => (job.outcome = r));
    const id = `job-${randomBytes(4).toString('hex')}`;
    e.jobs.set(id, job);
    return id;
  }

  poll(cellId: string, jobId: string) {
    const job = this.job(cellId, jobId);
    const a = job.stdout.take();
    const b = job.stderr.take();
    return {
      running: job.outcome === undefined,
      exitCode: job.outcome?.exitCode ?? null,
      stdout: a.text,
      stderr: b.text,
      truncated: a.truncated || b.truncated,
    };
  }

  kill(cellId: string, jobId: string, signal: number): void {
    this.job(cellId, jobId).exec.kill(signal);
  }

  private job(cellId: string, jobId: string): Job {
    const job = this.entry(cellId).jobs.get(jobId);
    if (!job) {
      throw new NanocellError(
        `no background command ${JSON.stringify(jobId)} in cell ${cellId}`,
        'pass the job_id start_command returned',
        'USAGE',
      );
    }
    return job;
  }

  /** The change set so far of a live cell, collected into a fresh temporary dir. */
  async preview(cellId: string): Promise<{ dir: string | undefined; cleanup(): void }> {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nanocell-mcp-diff-'));
    const cleanup = () => fs.rmSync(tmp, { recursive: true, force: true });
    try {
      return { dir: await this.get(cellId).previewChanges(path.join(tmp, 'changes')), cleanup };
    } catch (e) {
      cleanup();
      throw e;
    }
  }

  async destroy(cellId: string): Promise<CellSummary> {
    const { cell } = this.entry(cellId);
    this.cells.delete(cellId);
    const summary = await cell.destroy();
    const changeDir = (summary.changeSet as { dir?: string } | undefined)?.dir;
    this.ended.set(cellId, { taskId: summary.taskId, workspace: cell.workspace, changeDir });
    return summary;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.cells.keys()].map((id) => this.destroy(id)));
  }
}
