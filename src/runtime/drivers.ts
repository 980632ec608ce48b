// The OCI runtime drivers: what differs between runc, crun and runsc as nanocell drives them
// (minimum version, state directory, the run command, how state files name containers). What
// each runtime can do with the bundle is its traits (traits.ts), named so that the planner and
// the launcher branch on a capability; the driver is how the runtime's CLI is spoken.
import path from 'node:path';
import type { RuntimeName } from '../policy/defaults.js';
import { runtimeTraits, type RuntimeTraits } from './traits.js';

export interface RunArgvInput {
  runcRoot: string;
  id: string;
  bundle: string;
  pidFile: string;
  /** The cell connects to a host unix socket bind-mounted in (the proxy). */
  hostSocket: boolean;
}

export interface OciRuntime {
  readonly name: RuntimeName;
  readonly traits: RuntimeTraits;
  /** Oldest version with what nanocell relies on (runc 1.1: seccomp listenerPath). */
  readonly minVersion: readonly [number, number];
  /**
   * Its state directory next to runc's (`<state>/runc`, `<state>/crun`, `<state>/runsc`):
   * layouts differ, and one runtime must never mistake another's state for its own container.
   */
  stateRoot(runcRoot: string): string;
  /**
   * The command the monitor starts: `<runtime> run --detach` with init's control socket, which
   * the monitor holds on fd 3 (see RuntimeTraits.controlChannel). Cgroups are always configured.
   */
  runArgv(bin: string, o: RunArgvInput): string[];
  /** The container ids among the entries of its state directory. */
  containerIds(entries: string[]): string[];
}

const stateRootOf = (name: RuntimeName) => (runcRoot: string) =>
  name === 'runc' ? runcRoot : path.join(path.dirname(runcRoot), name);

const runArgsOf = (o: RunArgvInput) => [
  '--detach',
  '--pid-file',
  o.pidFile,
  '--bundle',
  o.bundle,
  o.id,
];

/** runc and crun: the same CLI, fd 3 preserved into the container, one dir per container. */
function preservedFdRuntime(name: 'runc' | 'crun', minVersion: [number, number]): OciRuntime {
  const stateRoot = stateRootOf(name);
  return {
    name,
    traits: runtimeTraits(name),
    minVersion,
    stateRoot,
    runArgv: (bin, o) => [
      bin,
      '--root',
      stateRoot(o.runcRoot),
      'run',
      '--preserve-fds',
      '1',
      ...runArgsOf(o),
    ],
    containerIds: (entries) => entries,
  };
}

const runscStateRoot = stateRootOf('runsc');

const RUNSC: OciRuntime = {
  name: 'runsc',
  traits: runtimeTraits('runsc'),
  minVersion: [0, 0],
  stateRoot: runscStateRoot,
  runArgv(bin, o) {
    // The spec's seccomp profile is applied inside the sandbox only with --oci-seccomp; the
    // netstack gets loopback only (the spec's empty net namespace, made explicit); a host unix
    // socket is reachable only when one is mounted in and host-uds allows opening it.
    const runsc = [
      bin,
      '--root',
      runscStateRoot(o.runcRoot),
      '--oci-seccomp',
      '--network=none',
      `--host-uds=${o.hostSocket ? 'open' : 'none'}`,
      'run',
      ...runArgsOf(o),
    ];
    // No --preserve-fds: the control socket becomes runsc's stdin, which the sandbox passes to
    // the container's first process.
    return ['/bin/sh', '-c', 'exec "$0" "$@" 0<&3 3<&-', ...runsc];
  },
  containerIds(entries) {
    // runsc keeps `<sandbox>_sandbox:<container>.state` files plus lock files.
    const ids = new Set<string>();
    for (const e of entries) {
      const m = /^([^_]+)_sandbox:([^.]+)\.state$/.exec(e);
      if (m) ids.add(m[2]!);
    }
    return [...ids];
  },
};

const DRIVERS: Readonly<Record<RuntimeName, OciRuntime>> = {
  runc: preservedFdRuntime('runc', [1, 1]),
  crun: preservedFdRuntime('crun', [1, 0]),
  runsc: RUNSC,
};

export function ociRuntime(name: RuntimeName): OciRuntime {
  return DRIVERS[name];
}
