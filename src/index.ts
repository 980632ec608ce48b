// nanocell as a library: policy → cell → commands → report and change set.
export { Cell } from './cell/cell.js';
export type { CellOptions, CellExec, CellSummary, ExecOutcome, EndReason } from './cell/types.js';
export { runTask, type TaskOptions, type TaskReport } from './task/task.js';
export { parsePolicy, loadPolicyFile, resolvePolicy } from './policy/load.js';
export type { Policy } from './policy/defaults.js';
export type { PolicyFile } from './policy/schema.js';
export { NanocellError, PolicyError } from './util/errors.js';
export { AuditStore } from './audit/store.js';
export { runDoctor, type Check } from './runtime/doctor.js';
export { gcStaleCells } from './cell/gc.js';
export { renderDiff, applyChangeSet, discardChangeSet, loadChangeSet } from './workspace/index.js';
