// What each OCI runtime can do with nanocell's bundle, in one table, so that the planner and
// the launcher branch on a named capability instead of on a runtime's name. Pure data.
import type { RuntimeName } from '../policy/defaults.js';

export interface RuntimeTraits {
  /**
   * How init's control socket reaches the cell. runc and crun hand a preserved fd 3 to the
   * container; runsc has no --preserve-fds and only passes its own stdio, so the socket goes
   * in as stdin and a shell in the cell moves it to fd 3 before exec'ing init.
   */
  controlChannel: 'preserved-fd' | 'stdin';
  /** SCMP_ACT_NOTIFY with a listenerPath, so the monitor can record every denial. */
  seccompNotify: boolean;
  /** The kernel the task talks to implements Landlock (gVisor's Sentry does not). */
  landlock: boolean;
  /**
   * Whether a cgroup v1/v2 hybrid layout with controllers on the v2 side stops the runtime:
   * crun refuses to start any container there, even with its cgroup manager disabled.
   */
  needsEmptyHybridV2: boolean;
  /**
   * The runtime opens bind-mount sources as the cell's root (a host uid of the cell's range)
   * rather than as host root: runsc's gofer does. Every parent dir must be traversable by it.
   */
  opensMountsAsCellRoot: boolean;
  /** The user-space kernel that stands between the task and the host kernel, if any. */
  userSpaceKernel?: string;
}

const RUNTIME_TRAITS: Readonly<Record<RuntimeName, RuntimeTraits>> = {
  runc: {
    controlChannel: 'preserved-fd',
    seccompNotify: true,
    landlock: true,
    needsEmptyHybridV2: false,
    opensMountsAsCellRoot: false,
  },
  crun: {
    controlChannel: 'preserved-fd',
    seccompNotify: true,
    landlock: true,
    needsEmptyHybridV2: true,
    opensMountsAsCellRoot: false,
  },
  runsc: {
    controlChannel: 'stdin',
    seccompNotify: false,
    landlock: false,
    needsEmptyHybridV2: false,
    opensMountsAsCellRoot: true,
    userSpaceKernel: 'gVisor',
  },
};

export function runtimeTraits(name: RuntimeName): RuntimeTraits {
  return RUNTIME_TRAITS[name];
}
