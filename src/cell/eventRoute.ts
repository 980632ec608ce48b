// Where a cell's events go, with one owner for the order: denial notes (denialNotes.ts) see
// each event first, then the task's record (record.ts) and the caller's onEvent. A warm pool's
// cell has no task yet, so its start's events are held until the claim names the record they
// belong to, and are then replayed through the same path as if they had just happened.
import type { CellEvent } from '../audit/cellEvents.js';
import { DenialNotes } from './denialNotes.js';
import type { TaskEnding, TaskRecord } from './record.js';
import type { CellSummary } from './types.js';

export class EventRoute {
  /** The cell's refusals as lines on the causing command's stderr (exec.ts attaches them). */
  readonly notes: DenialNotes;
  private held?: CellEvent[];
  /** The cell's own audit record, unless its caller keeps one (CellOptions.record). */
  private rec?: TaskRecord;

  constructor(
    denialNotes: boolean,
    private onEvent: ((e: CellEvent) => void) | undefined,
  ) {
    this.notes = new DenialNotes(denialNotes);
  }

  readonly emit = (e: CellEvent): void => {
    if (this.held) return void this.held.push(e);
    this.notes.observe(e);
    try {
      this.rec?.cellEvent(e);
      this.onEvent?.(e);
    } catch {
      // An audit sink failure must not take the cell down; the sink reports its own errors.
    }
  };

  /** From now until release, events wait (a warm cell's start, before its claim). */
  hold(): void {
    this.held = [];
  }

  /** Events are being held: the cell has no task yet. */
  get holding(): boolean {
    return this.held !== undefined;
  }

  /** The task's record: events from now on go to it, and finish ends it. */
  record(rec: TaskRecord | undefined): void {
    this.rec = rec;
  }

  /**
   * The task is known (a claim): events flow from now on, its record opens, and the held
   * events are replayed into it, in that order, so that a record that fails to open leaves a
   * cell whose end still reaches `onEvent`.
   */
  release(onEvent: ((e: CellEvent) => void) | undefined, open: () => TaskRecord | undefined) {
    const held = this.held ?? [];
    this.held = undefined;
    this.onEvent = onEvent;
    this.rec = open();
    for (const e of held) this.emit(e);
  }

  /** Ends the record, if the cell keeps one (the record keeps only its first end). */
  finish(end: TaskEnding): void {
    this.rec?.finish(end);
  }

  /** The record ends with the cell that failed to start or to end: the error is the report's. */
  failed(e: Error): void {
    this.finish({ exitCode: null, endReason: 'error', error: e, changes: 'keep' });
  }

  /** The record ends as the cell's end does: with its summary, or with the error it threw. */
  endsWith(end: Promise<CellSummary>): Promise<CellSummary> {
    return end.then(
      (summary) => {
        this.finish({ exitCode: null, endReason: summary.endReason!, summary, changes: 'keep' });
        return summary;
      },
      (e: Error) => {
        this.failed(e);
        throw e;
      },
    );
  }
}
