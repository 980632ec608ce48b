// The on-disk layout under the state root (see docs/architecture.md, "State").
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import { HOST_SLOTS_DIR } from '../host/slots.js';
import type { OwnerRecord } from '../host/owner.js';

export function defaultStateRoot(): string {
  if (process.env.NANOCELL_STATE_ROOT) return path.resolve(process.env.NANOCELL_STATE_ROOT);
  if (process.geteuid!() === 0) return '/var/lib/nanocell';
  const xdg = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(xdg, 'nanocell');
}

export interface StateLayout {
  root: string;
  db: string;
  cells: string;
  /** Host-wide uid-range leases (root mode). */
  slots: string;
  runtimeRoot: string;
  etc: string;
  changes: string;
  reports: string;
  /** `nanocell serve`'s unix socket (docs/architecture.md, "Cell server"). */
  serverSocket: string;
  /** Control sockets of running tasks (mode 0700: only the user who runs the cells). */
  control: string;
  /** The control socket of a running task's supervisor; same check as changeSet. */
  controlSocket(taskId: string): string;
  /** The change set dir of a task; refuses an id that could name any other path. */
  changeSet(taskId: string): string;
  /** The JSON report of a task; same check. */
  report(taskId: string): string;
  /** Session layers: a task's change set as an overlay layer, built for tasks that stack on it. */
  layers: string;
  layer(taskId: string): string;
  /** Per-session scratch (the combined change set of `apply --session`). */
  sessions: string;
  session(name: string): string;
  /** Frozen workspace states (`nanocell checkpoint`), one dir each. */
  checkpoints: string;
  /** The MAC key of layer seals and checkpoint manifests (src/cell/layerSeal.ts). */
  sealKey: string;
  /** A toolchain cache of one project (`key`: projectKey of its dev and inode). */
  toolCache(key: string, name: string): string;
  /** An agent preset's state dir for one project (`nanocell agent`), kept between its tasks. */
  agentConfig(key: string, name: string): string;
}

const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Session names take the same shape as task ids: they name dirs under the state root. */
export function checkedSessionName(name: string): string {
  if (!TASK_ID.test(name) || name.includes('..')) {
    throw new NanocellError(
      `${JSON.stringify(name)} is not a session name`,
      'use letters, digits, dot, dash and underscore (at most 128)',
      'USAGE',
    );
  }
  return name;
}

function checkedTaskId(taskId: string): string {
  if (!TASK_ID.test(taskId) || taskId.includes('..')) {
    throw new NanocellError(
      `${JSON.stringify(taskId)} is not a task id`,
      'pass the id shown by nanocell run or nanocell tasks',
      'USAGE',
    );
  }
  return taskId;
}

/** Every path under a state root, computed without touching the disk (see ensureStateRoot). */
export function stateLayout(root: string): StateLayout {
  const changes = path.join(root, 'changes');
  const reports = path.join(root, 'reports');
  const control = path.join(root, 'control');
  const layers = path.join(root, 'layers');
  const sessions = path.join(root, 'sessions');
  return {
    root,
    db: path.join(root, 'nanocell.db'),
    cells: path.join(root, 'cells'),
    slots: HOST_SLOTS_DIR,
    runtimeRoot: path.join(root, 'runc'),
    etc: path.join(root, 'etc'),
    changes,
    reports,
    serverSocket: path.join(root, 'nanocell.sock'),
    control,
    controlSocket: (taskId) => path.join(control, `${checkedTaskId(taskId)}.sock`),
    changeSet: (taskId) => path.join(changes, checkedTaskId(taskId)),
    report: (taskId) => path.join(reports, `${checkedTaskId(taskId)}.json`),
    layers,
    layer: (taskId) => path.join(layers, checkedTaskId(taskId)),
    sessions,
    session: (name) => path.join(sessions, checkedSessionName(name)),
    checkpoints: path.join(root, 'checkpoints'),
    sealKey: path.join(root, 'seal.key'),
    toolCache: (key, name) => path.join(root, 'caches', checkedTaskId(key), checkedTaskId(name)),
    agentConfig: (key, name) => path.join(root, 'agents', checkedTaskId(key), checkedTaskId(name)),
  };
}

/** Creates the state root with private permissions; refuses one that is unusable. */
export function ensureStateRoot(root: string): StateLayout {
  const layout = stateLayout(root);
  try {
    fs.mkdirSync(root, { recursive: true, mode: 0o711 });
    const st = fs.lstatSync(root);
    if (!st.isDirectory()) throw new Error('not a directory');
    if (st.uid !== process.geteuid!()) throw new Error(`owned by uid ${st.uid}, not by you`);
    fs.accessSync(root, fs.constants.W_OK | fs.constants.R_OK | fs.constants.X_OK);
    for (const d of [
      layout.cells,
      layout.runtimeRoot,
      layout.changes,
      layout.reports,
      layout.control,
    ]) {
      fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    }
    // The cells dir must be traversable by the cells' mapped uids (rootfs, etc under it).
    fs.chmodSync(layout.cells, 0o711);
    fs.mkdirSync(layout.etc, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw new NanocellError(
      `state root ${root} is unusable: ${(e as Error).message}`,
      'pass a writable directory you own with --state-root or NANOCELL_STATE_ROOT',
      'STATE',
    );
  }
  return layout;
}

/**
 * Root mode: a cell's root maps to a leased uid range, so the runtime's init (already in the
 * cell's user namespace when it mounts the bundle's rootfs) searches the path to the cells dir
 * as "others". Without search permission on every dir above it, runc fails with a bare
 * "permission denied" on the rootfs mount; this says which dir and what to do before anything
 * starts. Rootless, the cell's root is the user, whose own 0700 dirs are fine.
 */
export function assertCellsReachable(layout: StateLayout): void {
  for (let dir = path.dirname(layout.cells); ; dir = path.dirname(dir)) {
    const mode = fs.statSync(dir).mode;
    if ((mode & 0o001) === 0) {
      throw new NanocellError(
        `the cells' user namespaces cannot reach the state root: ${dir} has mode ` +
          `${(mode & 0o777).toString(8).padStart(4, '0')}, with no search permission for others`,
        `chmod o+x ${dir}, or pass a --state-root whose parent dirs others may search`,
        'STATE',
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

/**
 * A cell dir being removed is first renamed to this prefix and its id, in one step: its
 * removal takes a few milliseconds, and a supervisor killed meanwhile would leave a dir whose
 * owner record may already be gone, which gc would take for a cell still being created and
 * keep. A retired dir is garbage whoever made it.
 */
export const RETIRED_CELL_PREFIX = '.removing-';

/** Renames a cell dir out of the way for its removal; the path to remove (see above). */
export function retireCellDir(dir: string): string {
  const retired = path.join(path.dirname(dir), `${RETIRED_CELL_PREFIX}${path.basename(dir)}`);
  try {
    fs.renameSync(dir, retired);
    return retired;
  } catch {
    return dir; // gone already, or not renamable: removed where it is
  }
}

/**
 * A cell dir is made under this name, which says who makes it, and renamed to its id once its
 * owner record is in it: under its id a cell dir always has an owner, so gc never has to guess
 * whether an ownerless dir is still being made. A creating dir whose maker is gone is garbage.
 */
const CREATING_CELL_PREFIX = '.creating-';

/** Makes `dirs.dir` holding `owner` as its owner record, in one visible step (see above). */
export function createCellDir(dirs: CellDirs, owner: OwnerRecord): void {
  const name = `${CREATING_CELL_PREFIX}${owner.pid}-${owner.startTime}-${path.basename(dirs.dir)}`;
  const making = path.join(path.dirname(dirs.dir), name);
  fs.mkdirSync(making, { mode: 0o711 });
  try {
    fs.writeFileSync(path.join(making, path.basename(dirs.owner)), JSON.stringify(owner));
    fs.renameSync(making, dirs.dir);
  } catch (e) {
    fs.rmSync(making, { recursive: true, force: true });
    throw e;
  }
}

/** Who is making a cell dir named by createCellDir; undefined for any other name. */
export function cellDirMaker(name: string): Pick<OwnerRecord, 'pid' | 'startTime'> | undefined {
  const m = /^\.creating-(\d+)-(\d*)-/.exec(name);
  return m ? { pid: Number(m[1]), startTime: m[2]! } : undefined;
}

export interface CellDirs {
  dir: string;
  bundle: string;
  config: string;
  rootfs: string;
  /** tmpfs holding the overlay's upper and work dirs (the disk cap). */
  layer: string;
  upper: string;
  work: string;
  /** Idmapped, read-only view of the project: the overlay's lower layer. */
  lower: string;
  merged: string;
  seccompSocket: string;
  proxySocket: string;
  /** Mount points of the idmapped toolchain caches (root mode). */
  caches: string;
  syscallTable: string;
  initPid: string;
  owner: string;
}

export function cellDirs(layout: StateLayout, id: string): CellDirs {
  const dir = path.join(layout.cells, id);
  const layer = path.join(dir, 'layer');
  return {
    dir,
    bundle: path.join(dir, 'bundle'),
    config: path.join(dir, 'bundle', 'config.json'),
    rootfs: path.join(dir, 'bundle', 'rootfs'),
    layer,
    upper: path.join(layer, 'upper'),
    work: path.join(layer, 'work'),
    lower: path.join(dir, 'lower'),
    merged: path.join(dir, 'merged'),
    seccompSocket: path.join(dir, 'seccomp.sock'),
    proxySocket: path.join(dir, 'proxy.sock'),
    caches: path.join(dir, 'caches'),
    syscallTable: path.join(dir, 'syscalls.tbl'),
    initPid: path.join(dir, 'init.pid'),
    owner: path.join(dir, 'owner.json'),
  };
}
