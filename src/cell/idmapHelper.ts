// nanocell-idmap (native/idmap.c), the root-mode workspace's mount helper: an idmapped view of
// a directory (with the overlay over it in the same process), and every unmount of a cell's
// workspace in one process. A cell's start and end each spawned three mount or umount
// processes; on a loaded 2-core host every spawn costs milliseconds of the cold start.
import fs from 'node:fs';
import { nativeBinary } from '../host/native.js';
import { NanocellError } from '../util/errors.js';
import { runCommand } from '../util/run.js';
import { mountPoints } from '../workspace/overlay.js';

/**
 * Mounts `src` at `target` with `src`'s owner shown as `to` (uid and gid); read-only unless
 * `rw` (then noexec). With `overlay`, then mounts the overlay `data` (lowerdir=, upperdir=,
 * workdir=, overlayfs options) at `overlay.target`, nosuid and nodev.
 * Returns the helper's failure line, or undefined on success; `overlayFailed` says which step.
 */
async function idmapMount(o: {
  src: string;
  target: string;
  from: { uid: number; gid: number };
  to: { uid: number; gid: number };
  rw?: boolean;
  overlay?: { data: string; target: string };
}): Promise<{ error: string; overlayFailed: boolean } | undefined> {
  const args = [
    ...(o.rw ? ['--rw'] : []),
    '--uid',
    `${o.from.uid}:${o.to.uid}`,
    '--gid',
    `${o.from.gid}:${o.to.gid}`,
    o.src,
    o.target,
    ...(o.overlay ? ['--overlay', o.overlay.data, o.overlay.target] : []),
  ];
  const r = await runCommand(nativeBinary('nanocell-idmap'), args);
  if (r.exitCode === 0) return undefined;
  const error = (r.stderr.trim() || r.message).split('\n')[0]!;
  return { error, overlayFailed: error.startsWith('nanocell-idmap: overlay mount:') };
}

/**
 * The project at `lower` with its owner's files shown as owned by the cell user, so the task
 * can edit them through the overlay (every other owner maps to nobody); with `overlay`, the
 * overlay over it too, in the same helper process.
 */
export async function idmapProjectView(
  project: string,
  lower: string,
  cellHostUid: number,
  overlay?: { data: string; target: string },
): Promise<void> {
  const owner = fs.statSync(project);
  const failed = await idmapMount({
    src: project,
    target: lower,
    from: { uid: owner.uid, gid: owner.gid },
    to: { uid: cellHostUid, gid: cellHostUid },
    ...(overlay ? { overlay } : {}),
  });
  if (failed?.overlayFailed) {
    throw new NanocellError(
      `mounting the workspace overlay failed: ${failed.error}`,
      'run as root on a kernel with overlayfs and tmpfs; see `dmesg` for the reason',
      'HOST',
    );
  }
  if (failed) {
    throw new NanocellError(
      `cannot create the idmapped view of ${project}: ${failed.error}`,
      'the project must be on a file system that supports idmapped mounts (ext4, xfs, btrfs, tmpfs)',
      'HOST',
    );
  }
}

/**
 * Unmounts every mount at each of `targets`, in order (a mount before what it stands on), in
 * one process; a busy one is detached. Throws when any is still mounted after.
 */
export async function unmountAll(targets: readonly string[]): Promise<void> {
  // One read of the mount table before and one after, not one per target.
  const before = mountPoints();
  const live = targets.filter((t) => before.has(t));
  if (!live.length) return;
  const r = await runCommand(nativeBinary('nanocell-idmap'), ['--umount', ...live]);
  const after = mountPoints();
  const left = live.filter((t) => after.has(t));
  if (left.length) {
    throw new NanocellError(
      `${left.join(', ')} ${left.length > 1 ? 'are' : 'is'} still mounted${r.exitCode === 0 ? '' : ` (${(r.stderr.trim() || r.message).split('\n')[0]})`}`,
      'unmount it by hand (umount -l)',
      'HOST',
    );
  }
}
