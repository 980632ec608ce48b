// The thin, side-effecting half of the workspace view: a size-capped tmpfs for the overlay's
// upper and work dirs, a middle lower layer of whiteouts that hides out-of-scope paths, and
// the overlay mount itself. The mounts are root mode only (the mount and umount binaries do
// them here; a cell's overlay and unmounts go through nanocell-idmap, src/cell/idmapHelper.ts);
// rootless cells reuse the whiteout layer, which Linux 5.8+ lets anyone create.
import {
  chmodSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { NanocellError } from '../util/errors.js';
import { runCommand } from '../util/run.js';
import { credentialConfigs, writeGitConfigViews } from './gitConfigView.js';
import { writeGitIndexViews, type GitIndexView } from './gitIndexView.js';
import { parentOf, relPathProblem, selfAndAncestors } from './paths.js';
import { allHidden, assertProjectDir, type ScopePlan } from './scope.js';

export interface OverlayDirs {
  /** Holds everything below; removed by teardownOverlay. */
  baseDir: string;
  /** Mount point of the per-cell tmpfs (size = disk cap). */
  tmpfsDir: string;
  upperDir: string;
  workDir: string;
  /** Middle lower layer of whiteouts; undefined when nothing is hidden. */
  whiteoutDir: string | undefined;
  /** Where mountOverlay mounts the merged view by default. */
  mergedDir: string;
  /** Index copies in the middle layer that keep hidden tracked paths out of git's sight. */
  gitViews?: GitIndexView[];
  /** Git configuration files shown to the cell without their credentials (rel → text). */
  gitConfigs?: Map<string, string>;
}

export interface Owner {
  uid: number;
  gid: number;
}

/**
 * Inodes in the upper tmpfs: a little over what a change set may hold, so an inode flood ends
 * with ENOSPC in the cell instead of unbounded kernel memory on the host.
 */
const UPPER_MAX_INODES = 200_000; // twice changeset.ts DEFAULT_MAX_FILES

/** Options that keep the upper dir self-describing: no redirects, no metadata-only copies. */
const OVERLAY_DATA = ['redirect_dir=off', 'metacopy=off', 'index=off'];
/**
 * Flags, not data, to the kernel: the mount binary takes them as options; the attach helper
 * (a claim) and nanocell-idmap (a cold cell) set them as MS_NOSUID | MS_NODEV.
 */
const OVERLAY_FLAGS = ['nosuid', 'nodev'];

async function run(cmd: string, args: string[], what: string): Promise<void> {
  const r = await runCommand(cmd, args);
  if (r.exitCode !== 0) {
    const detail = String(r.stderr || r.stdout || r.message).split('\n')[0];
    throw new NanocellError(
      `${what} failed: ${detail}`,
      'run as root on a kernel with overlayfs and tmpfs; see `dmesg` for the reason',
      'HOST',
    );
  }
}

/** Overlay's option parser splits on ',' and ':', so such paths cannot be passed safely. */
export function assertMountablePath(p: string): void {
  if (!p.startsWith('/') || /[,:\\\s]/.test(p)) {
    throw new NanocellError(
      `path ${JSON.stringify(p)} cannot be used in an overlay mount (it must be absolute and free of , : \\ and spaces)`,
      'move the project or state root to a path without those characters',
      'WORKSPACE',
    );
  }
}

function assertRealDir(p: string, what: string): void {
  const st = lstatSync(p, { throwIfNoEntry: false });
  if (!st || st.isSymbolicLink() || !st.isDirectory()) {
    throw new NanocellError(
      `${what} ${p} is ${!st ? 'missing' : st.isSymbolicLink() ? 'a symlink' : 'not a directory'}`,
      'pass a real directory',
      'WORKSPACE',
    );
  }
}

/**
 * Creates `<baseDir>/{rw (tmpfs: upper, work, whiteouts), merged}`. The upper root takes the
 * project root's mode and `owner` (the host uid the cell user maps to) because the merged
 * root shows the upper root's attributes.
 */
export async function prepareOverlay(opts: {
  baseDir: string;
  plan: ScopePlan;
  sizeBytes: number;
  owner?: Owner;
}): Promise<OverlayDirs> {
  const staged = await stageOverlay({ ...opts, projectDir: opts.plan.projectDir });
  return fillOverlay(staged, opts.plan, opts.owner);
}

/**
 * What does not depend on the scope: the dirs and the size-capped tmpfs (a warm pool's cell
 * has these before its claim). A whiteout template is made here too, in the tmpfs but outside
 * every layer, so that fillOverlay can hardlink whiteouts without starting a process.
 */
export async function stageOverlay(opts: {
  baseDir: string;
  projectDir: string;
  sizeBytes: number;
  owner?: Owner;
  /** Make the whiteout template (a warm cell: its claim then starts no mknod). */
  whiteoutTemplate?: boolean;
}): Promise<OverlayDirs> {
  const { baseDir } = opts;
  assertProjectDir(opts.projectDir);
  assertMountablePath(baseDir);
  if (!Number.isSafeInteger(opts.sizeBytes) || opts.sizeBytes < 4096) {
    throw new NanocellError(
      `disk cap ${opts.sizeBytes} is too small`,
      'set limits.disk to at least 4k',
      'POLICY',
    );
  }
  const rootSt = lstatSync(opts.projectDir);
  const owner = opts.owner ?? { uid: rootSt.uid, gid: rootSt.gid };
  mkdirSync(baseDir, { recursive: true, mode: 0o700 });
  const tmpfsDir = `${baseDir}/rw`;
  const mergedDir = `${baseDir}/merged`;
  mkdirSync(tmpfsDir, { mode: 0o700 });
  mkdirSync(mergedDir, { mode: 0o700 });
  await run(
    'mount',
    [
      '-t',
      'tmpfs',
      '-o',
      `size=${opts.sizeBytes},nr_inodes=${UPPER_MAX_INODES},mode=0700,nosuid,nodev`,
      'nanocell-ws',
      tmpfsDir,
    ],
    'mounting the workspace tmpfs',
  );
  const upperDir = `${tmpfsDir}/upper`;
  const workDir = `${tmpfsDir}/work`;
  mkdirSync(upperDir);
  mkdirSync(workDir, { mode: 0o700 });
  chownSync(upperDir, owner.uid, owner.gid);
  chmodSync(upperDir, rootSt.mode & 0o7777);
  if (opts.whiteoutTemplate) {
    const template = `${tmpfsDir}/${WHITEOUT_TEMPLATE}`;
    await run('mknod', ['-m', '000', template, 'c', '0', '0'], 'creating a whiteout');
  }
  return { baseDir, tmpfsDir, upperDir, workDir, whiteoutDir: undefined, mergedDir };
}

/** The whiteout template stageOverlay makes at the tmpfs root (in no layer). */
const WHITEOUT_TEMPLATE = 'whiteout';

/** The scope's part: the layer of whiteouts and git views over the project (if any). */
export async function fillOverlay(
  staged: OverlayDirs,
  plan: ScopePlan,
  ownerOpt?: Owner,
): Promise<OverlayDirs> {
  const rootSt = lstatSync(plan.projectDir);
  const owner = ownerOpt ?? { uid: rootSt.uid, gid: rootSt.gid };
  // The project root's mode may have changed since staging; the merged root shows the upper's.
  chmodSync(staged.upperDir, rootSt.mode & 0o7777);
  const hidden = allHidden(plan);
  const gitConfigs = credentialConfigs(plan.projectDir);
  let whiteoutDir: string | undefined;
  let gitViews: GitIndexView[] = [];
  if (hidden.length || gitConfigs.size) {
    whiteoutDir = `${staged.tmpfsDir}/whiteouts`;
    const template = `${staged.tmpfsDir}/${WHITEOUT_TEMPLATE}`;
    const staged0 = lstatSync(template, { throwIfNoEntry: false })?.isCharacterDevice();
    gitViews = await writeWhiteoutLayer(
      whiteoutDir,
      plan.projectDir,
      hidden,
      owner,
      staged0 ? template : undefined,
    );
    writeGitConfigViews(whiteoutDir, plan.projectDir, gitConfigs, owner);
  }
  return { ...staged, whiteoutDir, gitViews, gitConfigs };
}

/**
 * Writes one whiteout (char device 0/0) per hidden path. Node cannot mknod, so one whiteout is
 * made with the mknod binary and the rest are hardlinks to it: one process for any number.
 * Directories mirror the project's modes because a merged directory shows the attributes of
 * the topmost layer that holds it; the modes are set last, so a read-only project directory
 * does not stop an unprivileged caller (rootless) from filling the layer.
 */
export async function writeWhiteoutLayer(
  layerDir: string,
  projectDir: string,
  hidden: string[],
  owner: Owner,
  /** A whiteout to hardlink from (stageOverlay's), so that no mknod process is needed. */
  templatePath?: string,
): Promise<GitIndexView[]> {
  mkdirSync(layerDir, { mode: 0o700 });
  chownSync(layerDir, owner.uid, owner.gid);
  const modes: Array<[dir: string, mode: number]> = [[layerDir, lstatSync(projectDir).mode]];
  const made = new Set<string>(['']);
  let template = templatePath;
  for (const rel of [...hidden].sort()) {
    const problem = relPathProblem(rel);
    if (problem) {
      throw new NanocellError(
        `hidden path ${JSON.stringify(rel)} ${problem}`,
        'fix the scope plan',
        'INTERNAL',
      );
    }
    for (const dir of selfAndAncestors(parentOf(rel) || '.').filter((d) => d !== '.')) {
      if (made.has(dir)) continue;
      const st = lstatSync(`${projectDir}/${dir}`);
      if (!st.isDirectory()) {
        throw new NanocellError(
          `${projectDir}/${dir} changed during setup`,
          'retry the task',
          'WORKSPACE',
        );
      }
      mkdirSync(`${layerDir}/${dir}`, { mode: 0o700 });
      chownSync(`${layerDir}/${dir}`, owner.uid, owner.gid);
      modes.push([`${layerDir}/${dir}`, st.mode]);
      made.add(dir);
    }
    const dest = `${layerDir}/${rel}`;
    if (template) {
      try {
        linkSync(template, dest);
        continue;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EMLINK') throw e;
      }
    }
    await run('mknod', ['-m', '000', dest, 'c', '0', '0'], 'creating a whiteout');
    template = dest;
  }
  // Children before parents: a parent's final mode may deny its owner write or search.
  for (const [dir, mode] of modes.reverse()) chmodSync(dir, mode & 0o7777);
  return writeGitIndexViews(layerDir, projectDir, hidden, owner);
}

export interface OverlayMount {
  lowerDir: string;
  dirs: OverlayDirs;
  target?: string;
  stack?: string[];
}

/**
 * Mounts the overlay at `target` (default: dirs.mergedDir) over `lowerDir`, under `stack` (a
 * session's layers, topmost first) when there is one, with the mount binary (a cold cell
 * mounts it through nanocell-idmap instead, in the process that makes its lower layer).
 */
export async function mountOverlay(opts: OverlayMount): Promise<string> {
  const target = opts.target ?? opts.dirs.mergedDir;
  await run(
    'mount',
    [
      '-t',
      'overlay',
      '-o',
      [overlayMountData(opts), ...OVERLAY_FLAGS].join(','),
      'nanocell-overlay',
      target,
    ],
    'mounting the workspace overlay',
  );
  return target;
}

/**
 * The overlay's mount data (its layers and options, without the nosuid and nodev flags), its
 * paths checked: a warm pool's claim mounts it from the attach helper (src/cell/claim.ts), a
 * cold cell from nanocell-idmap --overlay (src/cell/idmapHelper.ts).
 */
export function overlayMountData(opts: OverlayMount): string {
  const target = opts.target ?? opts.dirs.mergedDir;
  const lowers = [opts.dirs.whiteoutDir, ...(opts.stack ?? []), opts.lowerDir].filter(
    (x): x is string => !!x,
  );
  for (const p of [...lowers, opts.dirs.upperDir, opts.dirs.workDir, target]) {
    assertMountablePath(p);
    assertRealDir(p, 'overlay directory');
  }
  return [
    `lowerdir=${lowers.join(':')}`,
    `upperdir=${opts.dirs.upperDir}`,
    `workdir=${opts.dirs.workDir}`,
    ...OVERLAY_DATA,
  ].join(',');
}

/**
 * A read-only overlay of `layers` (topmost first) at `target`: used after the task to see the
 * merged view again from the upper dir when the cell's own mount is gone.
 */
export async function mountReadOnlyView(
  layers: string[],
  target: string,
  extraOptions: string[] = [],
): Promise<void> {
  for (const p of [...layers, target]) {
    assertMountablePath(p);
    assertRealDir(p, 'overlay directory');
  }
  // userxattr (unprivileged overlay) never follows redirects or metacopy, and this kernel
  // refuses it next to an explicit redirect_dir option.
  const noFollow = extraOptions.includes('userxattr') ? [] : ['redirect_dir=off', 'metacopy=off'];
  const options = [
    `lowerdir=${layers.join(':')}`,
    ...noFollow,
    'ro',
    'nosuid',
    'nodev',
    ...extraOptions,
  ];
  await run(
    'mount',
    ['-t', 'overlay', '-o', options.join(','), 'nanocell-view', target],
    'mounting the change-set view',
  );
}

/** Every mount point in this process's mount table. */
export function mountPoints(): Set<string> {
  const out = new Set<string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp === undefined) continue;
    out.add(mp.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

/** True when something is mounted exactly at `target`. */
export function isMountPoint(target: string): boolean {
  return mountPoints().has(target.replace(/\/+$/, ''));
}

/** Unmounts `target` (every mount stacked there); falls back to a lazy unmount when busy. */
export async function unmountOverlay(target: string): Promise<void> {
  for (let i = 0; i < 16 && isMountPoint(target); i++) {
    const r = await runCommand('umount', [target]);
    if (r.exitCode !== 0) await run('umount', ['-l', target], 'unmounting the workspace');
  }
  if (isMountPoint(target)) {
    throw new NanocellError(`${target} is still mounted`, 'unmount it by hand (umount -l)', 'HOST');
  }
}

/** Unmounts the merged view and the tmpfs and removes every directory prepareOverlay made. */
export async function teardownOverlay(dirs: OverlayDirs): Promise<void> {
  await unmountOverlay(dirs.mergedDir);
  await unmountOverlay(dirs.tmpfsDir);
  rmSync(dirs.baseDir, { recursive: true, force: true });
}
