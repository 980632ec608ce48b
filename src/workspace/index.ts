// The workspace layer's surface: what src/cell and the CLI use of the overlay, the scope,
// change sets and their apply. One list, so the layer's boundary is visible in one place.
export { planScope, scopeMounts, allHidden, type ScopePlan } from './scope.js';
export { listForeignOwned, foreignOwnersInScope, type ForeignOwners } from './owners.js';
export {
  prepareOverlay,
  writeWhiteoutLayer,
  assertMountablePath,
  mountOverlay,
  overlayMountData,
  stageOverlay,
  fillOverlay,
  unmountOverlay,
  teardownOverlay,
  type OverlayDirs,
  type Owner,
} from './overlay.js';
export { collectChangeSet, DEFAULT_MAX_FILES, type CollectOptions } from './changeset.js';
export { loadChangeSet, type ChangeSummary } from './manifest.js';
export { renderDiff } from './diff.js';
export { applyChangeSet } from './apply.js';
export { applyChosen } from './applyChosen.js';
export { discardChangeSet } from './discard.js';
