// nanocell as a library: policy → cell → commands → report and change set.
export { Cell } from './cell/cell.js';
export type { CellOptions, CellExec, CellSummary, ExecOutcome, EndReason } from './cell/types.js';
export type { CellFiles, FileEntry, FileStat, ReadResult } from './cell/files.js';
export { runTask, type TaskOptions, type TaskReport } from './task/task.js';
export { parsePolicy, loadPolicyFile, resolvePolicy } from './policy/load.js';
export type { Policy } from './policy/defaults.js';
export type { PolicyFile } from './policy/schema.js';
export { NanocellError, PolicyError } from './util/errors.js';
export { AuditStore } from './audit/store.js';
export { runDoctor, type Check } from './runtime/doctor.js';
export { gcStaleCells } from './cell/gc.js';
export { renderDiff, applyChangeSet, discardChangeSet, loadChangeSet } from './workspace/index.js';
// The Kubernetes backend (docs/kubernetes.md); Cell.create({ backend: 'k8s' }) is not wired yet.
export { K8sCell, type K8sCellOptions } from './k8s/cell.js';
export { runK8sTask, type K8sTaskOptions, type K8sTaskReport } from './k8s/run.js';
export { connectK8s } from './k8s/client.js';
export { renderShape, type RenderInput, type Rendered } from './k8s/render.js';
