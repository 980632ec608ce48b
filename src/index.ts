// nanocell as a library: policy → cell → commands → report and change set.
export { Cell } from './cell/cell.js';
export { CellPool, type PoolOptions, type PoolStats } from './cell/pool.js';
export type {
  CellOptions,
  CellExec,
  CellSummary,
  ExecOutcome,
  EndReason,
  RunOptions,
  RunResult,
} from './cell/types.js';
export type { CellFiles, FileEntry, FileStat, ReadResult } from './cell/files.js';
export type { ExecOptions } from './cell/types.js';
export type { AttachResult, ProcessInfo, SpawnOptions } from './cell/background.js';
export type { ChangesSoFar } from './cell/changes.js';
// Cells owned by a running `nanocell serve` (Cell.list / Cell.connect / RemoteCell.create).
export {
  RemoteCell,
  RemoteFiles,
  type RemoteCellOptions,
  type RemoteExecOptions,
  type ServerLocation,
} from './cell/remote/remoteCell.js';
export { runTask, type TaskOptions, type TaskReport } from './task/task.js';
export { parsePolicy, loadPolicyFile, resolvePolicy } from './policy/load.js';
export type { Policy } from './policy/defaults.js';
export type { PolicyFile } from './policy/schema.js';
export { NanocellError, PolicyError } from './util/errors.js';
export { AuditStore } from './audit/store.js';
export { runDoctor, type Check } from './runtime/doctor.js';
export { gcStaleCells } from './cell/gc.js';
export {
  renderDiff,
  applyChangeSet,
  applyChosen,
  discardChangeSet,
  loadChangeSet,
} from './workspace/index.js';
// The Kubernetes backend (docs/kubernetes.md): Cell.create({ ..., backend: k8sBackend({ api }) }).
export { k8sBackend, K8sSdkCell, type K8sBackendOptions, type K8sRunResult } from './k8s/sdk.js';
export { K8sCell, type K8sCellOptions } from './k8s/cell.js';
export { runK8sTask, type K8sTaskOptions, type K8sTaskReport } from './k8s/run.js';
export { connectK8s } from './k8s/client.js';
export { renderShape, type RenderInput, type Rendered } from './k8s/render.js';
// A supervisor that runs its own Cell serves the control socket itself (runTask does it).
export { ControlServer, type ControlServerOptions, type ControlTarget } from './control/server.js';
export { endTask, execInTask, type ExecStreams } from './control/client.js';
