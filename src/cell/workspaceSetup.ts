// Set-up steps of the workspace view that sit beside the overlay: the rootless whiteout layer,
// the notice about files of other owners, and the read-only mounts of protected paths.
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import {
  assertMountablePath,
  allHidden,
  writeWhiteoutLayer,
  type ForeignOwners,
  type Owner,
  type ScopePlan,
} from '../workspace/index.js';
import { writeGitConfigViews } from '../workspace/gitConfigView.js';
import { trackedHiddenNotice } from '../workspace/gitIndexView.js';
import type { OciMount } from '../plan/oci.js';

/** What the workspace could not give the task; reported like a degradation, never refused. */
export interface WorkspaceNotice {
  control:
    'workspace-owners' | 'workspace-home' | 'workspace-git-history' | 'workspace-git-credentials';
  reason: string;
}

/**
 * The same middle layer of whiteouts as root mode, owned by the caller: Linux 5.8+ lets an
 * unprivileged user create whiteouts, and overlayfs honours them in a lower layer. Without it an
 * excluded path would be visible, so a failure refuses the cell.
 */
export async function writeRootlessWhiteouts(
  scope: ScopePlan,
  layerDir: string,
  owner: Owner,
  notices: WorkspaceNotice[],
  gitConfigs: Map<string, string>,
): Promise<string | undefined> {
  const hidden = allHidden(scope);
  if (!hidden.length && !gitConfigs.size) return undefined;
  assertMountablePath(layerDir);
  try {
    const git = trackedHiddenNotice(
      await writeWhiteoutLayer(layerDir, scope.projectDir, hidden, owner),
    );
    if (git) notices.push({ control: 'workspace-git-history', reason: git });
    writeGitConfigViews(layerDir, scope.projectDir, gitConfigs, owner);
  } catch (e) {
    if (e instanceof NanocellError && e.kind !== 'HOST') throw e;
    throw new NanocellError(
      `cannot hide excluded paths from a rootless cell: creating overlay whiteouts as uid ${owner.uid} failed (${(e as Error).message})`,
      'rootless cells need Linux 5.8 or newer, where any user may create whiteouts; upgrade the kernel or run nanocell as root',
      'HOST',
    );
  }
  return layerDir;
}

export function foreignOwnersNotice(
  f: ForeignOwners,
  project: string,
  who: { uid: number; gid: number },
): WorkspaceNotice {
  const count = `${f.atLeast ? 'at least ' : ''}${f.count}`;
  return {
    control: 'workspace-owners',
    reason:
      `${count} workspace file(s) or dir(s) are owned by a user or group other than yours (uid ${who.uid}, gid ${who.gid}), ` +
      `e.g. ${f.example}: a rootless cell can read them but changing them fails (EOVERFLOW); ` +
      `to fix, give them to your user: chown -R ${who.uid}:${who.gid} ${project}`,
  };
}

/** Rootless binds come from the project itself, or from the middle layer's redacted copy. */
export function protectMounts(
  scope: ScopePlan,
  project: string,
  layer: string | undefined,
  gitConfigs: Map<string, string>,
): OciMount[] {
  return scope.protected.map((rel) => ({
    destination: path.join(project, rel),
    type: 'bind',
    source: path.join(layer && gitConfigs.has(rel) ? layer : project, rel),
    options: ['rbind', 'ro', 'nosuid', 'nodev'],
  }));
}
