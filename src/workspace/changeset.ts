// Reads what the agent changed from the overlay's upper dir and stores it as a bounded change
// set. The upper dir names the touched paths; contents and deletions are judged against the
// merged view (the kernel's own reading of whiteouts and opaque dirs) and the lower layer.
import {
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
  fsyncSync,
} from 'node:fs';
import { summarize, type ChangeSummary, type Manifest } from './manifest.js';
import { isMountPoint, mountReadOnlyView, unmountOverlay } from './overlay.js';

import { Collector, Refusal, unreadable, type CollectOptions } from './collector.js';
export {
  baseState,
  DEFAULT_MAX_FILES,
  DEFAULT_MAX_NAME_BYTES,
  type CollectOptions,
} from './collector.js';

export async function collectChangeSet(o: CollectOptions): Promise<ChangeSummary> {
  const projectSt = lstatSync(o.projectDir, { bigint: true });
  mkdirSync(o.outDir, { recursive: false, mode: 0o700 });
  mkdirSync(`${o.outDir}/files`, { mode: 0o700 });
  let viewDir = o.mergedDir;
  let ownView: string | undefined;
  const stackDirs = o.stackDirs ?? [];
  if (!viewDir || (!o.plainView && !isMountPoint(viewDir))) {
    ownView = `${o.outDir}.view`;
    mkdirSync(ownView, { mode: 0o700 });
    const layers = [o.upperDir, o.hiddenLayerDir, ...stackDirs, o.lowerDir].filter(
      (l): l is string => !!l,
    );
    await mountReadOnlyView(layers, ownView, o.viewOptions);
    viewDir = ownView;
  }
  // A stacked task is judged against what it started from: the project under its layers.
  let lowerView: string | undefined;
  if (stackDirs.length) {
    lowerView = `${o.outDir}.lower`;
    mkdirSync(lowerView, { mode: 0o700 });
    try {
      await mountReadOnlyView([...stackDirs, o.lowerDir], lowerView, o.viewOptions);
    } catch (e) {
      if (ownView) await unmountOverlay(ownView).catch(() => undefined);
      throw e;
    }
  }
  const judged = lowerView ? { ...o, lowerDir: lowerView } : o;
  const manifest: Manifest = {
    version: 1,
    taskId: o.taskId,
    projectDir: o.projectDir,
    projectId: { dev: String(projectSt.dev), ino: String(projectSt.ino) },
    startedAtMs: o.startedAtMs,
    collectedAtMs: Date.now(),
    status: 'ok',
    patterns: o.scope.patterns,
    hidden: [...o.scope.hidden, ...o.scope.hardlinkHidden],
    limits: o.limits,
    entries: [],
    refused: [],
    totalBytes: 0,
    ...(o.session ? { session: o.session } : {}),
    ...(o.gitignore === false ? { gitignore: false } : {}),
    ...(o.stack?.length ? { stack: o.stack } : {}),
  };
  try {
    try {
      new Collector(judged, viewDir, manifest).run();
    } catch (e) {
      // An entry the collector cannot read fails the change set with the reason, not the task.
      const code = (e as NodeJS.ErrnoException).code;
      if (typeof code === 'string' && code.startsWith('E'))
        throw unreadable(e as NodeJS.ErrnoException, [viewDir, o.upperDir, o.lowerDir]);
      throw e;
    }
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    // Never keep a partial copy: the change set is refused as a whole.
    rmSync(`${o.outDir}/files`, { recursive: true, force: true });
    mkdirSync(`${o.outDir}/files`, { mode: 0o700 });
    manifest.status = 'refused';
    manifest.reason = e.message;
    manifest.entries = [];
    manifest.refused = [];
    manifest.totalBytes = 0;
  } finally {
    for (const v of [ownView, lowerView]) {
      if (!v) continue;
      await unmountOverlay(v);
      rmSync(v, { recursive: true, force: true });
    }
  }
  writeManifest(o.outDir, manifest);
  return summarize({ dir: o.outDir, manifest });
}

export function writeManifest(dir: string, manifest: Manifest): void {
  const tmp = `${dir}/.manifest.json.tmp`;
  writeFileSync(tmp, JSON.stringify(manifest), { mode: 0o600, flag: 'w' });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, `${dir}/manifest.json`);
}
