// How a cell's change set is collected outside the supervisor's thread: the rootless child
// (an unprivileged mount namespace), its error line, and the disk-cap check after collection.
import fs from 'node:fs';
import path from 'node:path';
import { runCommand } from '../util/run.js';
import { packageRoot } from '../util/packageRoot.js';
import { NanocellError } from '../util/errors.js';
import { formatSize } from '../util/units.js';
import { type ChangeSummary, type CollectOptions } from '../workspace/index.js';
import {
  collectionAborted,
  fromWireError,
  removePartial,
  type WireError,
} from '../workspace/collectWorker.js';
import type { CellEvent } from './types.js';

/**
 * Whether the task filled the upper layer's tmpfs (the disk cap): the kernel answered its
 * writes with ENOSPC, and the report should say why they failed. "Full" is under 1 MiB of
 * blocks or no inode left: a write that did not fit leaves less than its own size free.
 */
export function diskCapHit(
  upperDir: string,
  diskBytes: number,
  emit: (e: CellEvent) => void,
): void {
  let st: fs.StatsFs;
  try {
    st = fs.statfsSync(upperDir);
  } catch {
    return;
  }
  const free = st.bavail * st.bsize;
  if (free >= 1024 * 1024 && st.ffree > 0) return;
  const what = st.ffree > 0 ? `${formatSize(diskBytes)} of space` : 'its inodes';
  emit({
    type: 'limit.hit',
    limit: 'disk',
    detail: `the workspace used up ${what} (limits.disk); writes past it failed with ENOSPC`,
  });
}

/**
 * The collector's thread may not grow past this: with the entry and name caps
 * (DEFAULT_MAX_FILES, DEFAULT_MAX_NAME_BYTES) it never needs to, so reaching it fails the
 * collection (recorded) instead of taking the supervisor's memory. docs/architecture.md, State.
 */
export const COLLECTOR_HEAP = { maxOldGenerationSizeMb: 512, maxYoungGenerationSizeMb: 32 };

/**
 * Rootless: the cell's overlay lived in its own mount namespace, and the caller may not mount
 * on the host, so the view of upper over lower is mounted in a child user+mount namespace.
 */
export async function collectUnprivileged(
  opts: CollectOptions,
  signal: AbortSignal | undefined,
): Promise<ChangeSummary> {
  if (signal?.aborted) throw collectionAborted();
  const main = path.join(packageRoot(), 'dist', 'workspace', 'collectMain.js');
  const outDirWasFree = !fs.existsSync(opts.outDir);
  const r = await runCommand(
    'unshare',
    [
      ...['--user', '--map-root-user', '--mount', '--', process.execPath],
      `--max-old-space-size=${COLLECTOR_HEAP.maxOldGenerationSizeMb}`,
      main,
      JSON.stringify(opts),
    ],
    { maxBuffer: 256 * 1024 * 1024, ...(signal ? { signal } : {}) },
  );
  if (r.aborted) {
    // The child's view mount died with its namespace; only its partial output is left.
    if (outDirWasFree) await removePartial(opts.outDir);
    throw collectionAborted();
  }
  if (r.exitCode !== 0) {
    const last = (r.stderr.trim() || r.message).split('\n').pop() ?? '';
    const wire = parseCollectError(last);
    if (wire) throw fromWireError(wire);
    throw new NanocellError(
      `collecting the change set failed: ${last}`,
      'check that unprivileged user namespaces are allowed (nanocell doctor)',
      'HOST',
    );
  }
  return JSON.parse(r.stdout) as ChangeSummary;
}

function parseCollectError(line: string): WireError | undefined {
  try {
    const v = JSON.parse(line) as { collectError?: WireError };
    return typeof v.collectError?.message === 'string' ? v.collectError : undefined;
  } catch {
    return undefined;
  }
}
