// The SDK verbs of a running cell that are built on its primitives (exec, previewChanges, its
// network): background processes, the change set so far, run-time egress rules, labels. A
// base class of Cell, so that cell.ts keeps the lifecycle and this file the conveniences.
import { EventEmitter } from 'node:events';
import type { CellEvent } from '../audit/cellEvents.js';
import type { Policy } from '../policy/defaults.js';
import {
  BackgroundProcesses,
  type AttachResult,
  type ProcessInfo,
  type SpawnOptions,
} from './background.js';
import { ChangePreviews, type ChangesSoFar } from './changes.js';
import { checkLabels } from './labels.js';
import { allowList, replaceAllowList } from './netControl.js';
import type { CellNetwork } from './networkSetup.js';
import type { CellExec, ExecOptions } from './types.js';

export abstract class CellVerbs extends EventEmitter {
  abstract readonly id: string;
  /** The caller's metadata (CellOptions.labels), checked, recorded with the task. */
  readonly labels: Readonly<Record<string, string>>;
  private readonly bg = new BackgroundProcesses((argv, o) => this.exec(argv, o));
  private readonly previews = new ChangePreviews(
    () => this.id,
    (d) => this.previewChanges(d),
  );

  protected constructor(labels: Record<string, string> | undefined) {
    super();
    this.labels = Object.freeze(checkLabels(labels));
  }

  abstract exec(argv: string[], opts?: ExecOptions): CellExec;
  abstract previewChanges(outDir: string): Promise<string | undefined>;
  /** Throws unless the cell runs. */
  protected abstract live(): void;
  /** The cell's network and policy (after start). */
  protected abstract netOf(): { net: CellNetwork; policy: Policy } | undefined;
  protected abstract readonly emitEvent: (e: CellEvent) => void;

  /**
   * The change set so far, summarised, collected under a temporary dir of the cell's that is
   * removed at destroy (only the newest call's is kept); undefined without a workspace.
   */
  changes(): Promise<ChangesSoFar | undefined> {
    this.live();
    return this.previews.collect();
  }

  /** Removes what changes() collected (the cell's release). */
  protected disposePreviews(): void {
    this.previews.dispose();
  }

  /**
   * Replaces the cell's `network.allow` list for connections from now on (the policy's deny,
   * cidrs and hosts stay). A bad entry is a PolicyError and nothing changes; recorded as a
   * `net.rules` event. Needs the cell's proxy: start it with at least one allow entry.
   */
  setNetwork(allow: readonly string[]): void {
    this.live();
    const { net, policy } = this.netOf()!;
    this.emitEvent(replaceAllowList(net, policy, allow));
  }

  /** The `network.allow` entries in force (the policy's, grants, setNetwork's). */
  get network(): string[] {
    const n = this.netOf();
    return n ? allowList(n.net) : [];
  }

  /** Starts a background process; its output is kept (capped) until attach reads it. */
  spawn(argv: string[], opts?: SpawnOptions): { id: string } {
    return this.bg.spawn(argv, opts);
  }

  /** The background processes, running and ended, oldest first. */
  processes(): ProcessInfo[] {
    return this.bg.list();
  }

  /** What a background process wrote since the last attach, whether it runs, its live handle. */
  attach(id: string): AttachResult {
    return this.bg.attach(id);
  }

  /** Signals a background process's group (default SIGTERM). */
  killProcess(id: string, signal?: number): void {
    this.bg.kill(id, signal);
  }
}
