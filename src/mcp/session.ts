// The cells one MCP connection owns. Their background commands are the library's (Cell.spawn).
// Everything is destroyed when the connection ends: an agent that goes away leaves no cell
// running.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cell } from '../cell/cell.js';
import type { CellSummary } from '../cell/types.js';
import { loadPolicyFile, resolvePolicy } from '../policy/load.js';
import type { PolicyFile } from '../policy/schema.js';
import { NanocellError } from '../util/errors.js';
import { CappedBuffer } from '../util/cappedBuffer.js';
import { backgroundArgv, COMMAND_VAR, runArgv } from './shell.js';

const SIGKILL = 9;

export interface SessionOptions {
  stateRoot?: string;
  /** Layered under every create_cell's own policy file. */
  basePolicy?: PolicyFile;
}

export interface RunResult {
  exitCode: number;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

export class McpSession {
  private readonly cells = new Map<string, Cell>();
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
    this.cells.set(cell.id, cell);
    return cell;
  }

  get(cellId: string): Cell {
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
    return this.get(cellId).spawn(backgroundArgv(), { env: { ...env, [COMMAND_VAR]: command } }).id;
  }

  poll(cellId: string, jobId: string) {
    const r = this.get(cellId).attach(jobId);
    return {
      running: r.running,
      exitCode: r.exitCode,
      stdout: r.stdout,
      stderr: r.stderr,
      truncated: r.truncated,
    };
  }

  kill(cellId: string, jobId: string, signal: number): void {
    this.get(cellId).killProcess(jobId, signal);
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
    const cell = this.get(cellId);
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
