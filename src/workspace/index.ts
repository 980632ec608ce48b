export { planScope, scopeMounts, allHidden, type ScopePlan } from './scope.js';
export type { OciMount } from './ociMount.js';
export type { WorkspacePatterns } from './globs.js';
export { listForeignOwned, foreignOwnersInScope, type ForeignOwners } from './owners.js';
export {
  prepareOverlay,
  writeWhiteoutLayer,
  assertMountablePath,
  mountOverlay,
  unmountOverlay,
  teardownOverlay,
  isMountPoint,
  type OverlayDirs,
  type Owner,
} from './overlay.js';
export {
  collectChangeSet,
  DEFAULT_MAX_FILES,
  type ChangeLimits,
  type CollectOptions,
} from './changeset.js';
export { loadChangeSet, summarize, type ChangeSummary, type Manifest } from './manifest.js';
export { renderDiff } from './diff.js';
export { applyChangeSet, type ApplyOptions, type ApplyResult } from './apply.js';
export { discardChangeSet } from './discard.js';
