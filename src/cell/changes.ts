// Cell.changes(): the change set so far of a running cell, summarised. Each call collects a
// fresh preview (Cell.previewChanges) into a temporary dir of the cell's own, removes the one
// before (only the newest is kept) and the dir goes when the cell is destroyed, so a caller
// that asks after every tool call does not fill the disk.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadChangeSet } from '../workspace/manifest.js';

export interface ChangesSoFar {
  /** The collected change set (manifest.json, files/); valid until the next call or destroy. */
  dir: string;
  /** 'refused': too big or unreadable, nothing kept (see reason). */
  status: 'ok' | 'refused';
  reason?: string;
  /** Workspace-relative paths. `modified` includes permission-only changes. */
  added: string[];
  modified: string[];
  deleted: string[];
  /** Changes that will never be applied, with why (protected paths, hostile names...). */
  refused: { path: string; reason: string }[];
  totalBytes: number;
}

export class ChangePreviews {
  private tmp?: string;
  private n = 0;
  private last?: string;

  constructor(
    private readonly cellId: () => string,
    private readonly preview: (outDir: string) => Promise<string | undefined>,
  ) {}

  /** One collection at a time: a call must not remove the dir an earlier one returns. */
  private queue: Promise<unknown> = Promise.resolve();

  /** undefined: the cell has no workspace (nothing can change). */
  collect(): Promise<ChangesSoFar | undefined> {
    const next = this.queue.then(
      () => this.collectNow(),
      () => this.collectNow(),
    );
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async collectNow(): Promise<ChangesSoFar | undefined> {
    this.tmp ??= fs.mkdtempSync(path.join(os.tmpdir(), `nanocell-changes-${this.cellId()}-`));
    const out = path.join(this.tmp, String(++this.n));
    let dir: string | undefined;
    try {
      dir = await this.preview(out);
    } catch (e) {
      fs.rmSync(out, { recursive: true, force: true });
      throw e;
    }
    if (this.last) fs.rmSync(this.last, { recursive: true, force: true });
    this.last = dir;
    if (dir === undefined) return undefined;
    const m = loadChangeSet(dir).manifest;
    const of = (...kinds: string[]) =>
      m.entries.filter((e) => kinds.includes(e.kind)).map((e) => e.path);
    return {
      dir,
      status: m.status,
      ...(m.reason !== undefined ? { reason: m.reason } : {}),
      added: of('add'),
      modified: of('modify', 'mode'),
      deleted: of('delete'),
      refused: m.refused.map((r) => ({ ...r })),
      totalBytes: m.totalBytes,
    };
  }

  /** Removes every preview (the cell's release, at destroy). */
  dispose(): void {
    if (this.tmp) fs.rmSync(this.tmp, { recursive: true, force: true });
    this.tmp = undefined;
    this.last = undefined;
  }
}
