// Host checks behind `nanocell doctor`: what works, what would be degraded, and the fix.
import fs from 'node:fs';
import os from 'node:os';
import { resolveRuntime, runtimeHostProblem } from './runtime.js';
import { runtimeTraits } from './traits.js';
import type { RuntimeName } from '../policy/defaults.js';
import { runtimeNames as RUNTIMES, toolchainNames } from '../policy/schema.js';
import { invokingHome } from '../host/hostPaths.js';
import { findToolchains } from '../host/toolchains.js';
import { NanocellError } from '../util/errors.js';
import { nativeBinary, type NativeHelper } from '../host/native.js';
import { probeCgroups, probeLandlockAbi } from '../host/probe.js';
import { findNft } from '../net/capture.js';

type CheckStatus = 'ok' | 'degraded' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

function read(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Whether a runtime is installed, new enough and able to start cells on this host, and what
 * a cell gives up under it. `worst` is the status of a problem: the runtime the user picked
 * fails; one they might pick later only warns.
 */
function runtimeCheck(
  checkName: string,
  name: RuntimeName,
  explicitPath: string | undefined,
  worst: CheckStatus,
): Check {
  let rt;
  try {
    rt = resolveRuntime(name, explicitPath);
  } catch (e) {
    return {
      name: checkName,
      status: worst,
      detail: (e as Error).message,
      fix: (e as NanocellError).fix,
    };
  }
  const where = `${rt.name} ${rt.version} at ${rt.path}`;
  const problem = runtimeHostProblem(rt);
  if (problem) {
    return {
      name: checkName,
      status: worst,
      detail: `${where}: ${problem.problem}`,
      fix: problem.fix,
    };
  }
  const traits = runtimeTraits(name);
  if (!traits.landlock || !traits.seccompNotify) {
    return {
      name: checkName,
      status: 'ok',
      detail: `${where}; under ${traits.userSpaceKernel ?? name} there is no Landlock (cells need --allow-degraded landlock), seccomp denials are enforced but not recorded, and egress has no transparent capture or DNS stub (only clients that use the proxy variables get out)`,
    };
  }
  return { name: checkName, status: 'ok', detail: where };
}

/** What `toolchains:` would find for this user: informational, never a failure. */
function toolchainCheck(): Check {
  const { found, missing } = findToolchains(toolchainNames, invokingHome());
  const list = found.map((t) => `${t.name} ${t.version} (${t.source}: ${t.root})`);
  return {
    name: 'toolchains',
    status: 'ok',
    detail: `${list.length ? list.join('; ') : 'none found'}${missing.length ? `; not found: ${missing.join(', ')}` : ''}`,
  };
}

export function runDoctor(opts: { runtime?: RuntimeName; runtimePath?: string } = {}): Check[] {
  const rootless = process.geteuid!() !== 0;
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);

  const kernel = os.release();
  add({ name: 'kernel', status: 'ok', detail: `${os.type()} ${kernel} (${process.arch})` });
  add({
    name: 'mode',
    status: 'ok',
    detail: rootless
      ? `rootless (uid ${process.geteuid!()}): runc rootless, one mapped uid`
      : 'root: one host uid range per cell',
  });

  checks.push(...nativeHelperChecks());
  add(egressCheck());

  const selected = opts.runtime ?? 'runc';
  add(runtimeCheck('runtime', selected, opts.runtimePath, 'fail'));
  // The other runtimes, so that --runtime X can be judged before it is tried.
  for (const name of RUNTIMES.filter((n) => n !== selected)) {
    add(runtimeCheck(`runtime ${name}`, name, undefined, 'degraded'));
  }

  add(userNamespaceCheck(rootless));
  add(seccompCheck());
  add(overlayfsCheck());
  if (!rootless) add(idmappedMountsCheck(kernel));
  add(landlockCheck());
  add(cgroupsCheck(rootless));
  if (rootless) {
    add({
      name: 'disk cap',
      status: 'degraded',
      detail: 'rootless cells write the workspace upper layer to the host disk without a size cap',
      fix: 'run as root for a capped tmpfs upper layer; cells need --allow-degraded disk-cap',
    });
  }
  add(toolchainCheck());
  return checks;
}

function nativeHelperChecks(): Check[] {
  const checks: Check[] = [];
  const helpers: NativeHelper[] = [
    'nanocell-init',
    'nanocell-monitor',
    'nanocell-idmap',
    'nanocell-peercred',
  ];
  for (const h of helpers) {
    try {
      checks.push({ name: h, status: 'ok', detail: nativeBinary(h) });
    } catch (e) {
      checks.push({ name: h, status: 'fail', detail: 'not built', fix: (e as NanocellError).fix });
    }
  }
  return checks;
}

function egressCheck(): Check {
  const nft = findNft();
  return nft
    ? {
        name: 'egress capture',
        status: 'ok',
        detail: `${nft}: TCP captured by TPROXY, DNS stub, other UDP and ICMP dropped (runc, crun)`,
      }
    : {
        name: 'egress capture',
        status: 'fail',
        detail: 'no nft: cells with network.allow cannot capture egress and are refused',
        fix: 'install nftables (Debian/Ubuntu: apt-get install nftables)',
      };
}

function userNamespaceCheck(rootless: boolean): Check {
  const maxNs = Number(read('/proc/sys/user/max_user_namespaces') ?? '0');
  const debianClone = read('/proc/sys/kernel/unprivileged_userns_clone');
  const apparmor = read('/proc/sys/kernel/apparmor_restrict_unprivileged_userns');
  if (maxNs <= 0) {
    return {
      name: 'user namespaces',
      status: 'fail',
      detail: 'user.max_user_namespaces is 0',
      fix: 'sysctl -w user.max_user_namespaces=15000',
    };
  } else if (rootless && debianClone === '0') {
    return {
      name: 'user namespaces',
      status: 'fail',
      detail: 'unprivileged user namespaces are disabled',
      fix: 'sysctl -w kernel.unprivileged_userns_clone=1',
    };
  } else if (rootless && apparmor === '1') {
    return {
      name: 'user namespaces',
      status: 'fail',
      detail: 'AppArmor restricts unprivileged user namespaces (Ubuntu 24.04+)',
      fix: 'add an AppArmor profile allowing userns for runc, or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0',
    };
  } else {
    return { name: 'user namespaces', status: 'ok', detail: `max ${maxNs}` };
  }
}

function seccompCheck(): Check {
  const actions = read('/proc/sys/kernel/seccomp/actions_avail') ?? '';
  if (!actions) {
    return {
      name: 'seccomp',
      status: 'fail',
      detail: 'the kernel has no seccomp filter support',
      fix: 'use a kernel with CONFIG_SECCOMP_FILTER',
    };
  } else if (!actions.includes('user_notif')) {
    return {
      name: 'seccomp',
      status: 'fail',
      detail: 'no SECCOMP_RET_USER_NOTIF: denials cannot be recorded',
      fix: 'use Linux 5.0 or newer',
    };
  } else {
    return { name: 'seccomp', status: 'ok', detail: 'filter + user notification' };
  }
}

function overlayfsCheck(): Check {
  const filesystems = read('/proc/filesystems') ?? '';
  return /\boverlay\b/.test(filesystems)
    ? { name: 'overlayfs', status: 'ok', detail: 'available' }
    : {
        name: 'overlayfs',
        status: 'fail',
        detail: 'overlay is not in /proc/filesystems',
        fix: 'modprobe overlay',
      };
}

function idmappedMountsCheck(kernel: string): Check {
  const [maj = 0, min = 0] = kernel.split('.').map((x) => parseInt(x, 10));
  return maj > 5 || (maj === 5 && min >= 12)
    ? { name: 'idmapped mounts', status: 'ok', detail: 'kernel >= 5.12' }
    : {
        name: 'idmapped mounts',
        status: 'fail',
        detail: `kernel ${kernel} lacks mount_setattr`,
        fix: 'use Linux 5.12 or newer',
      };
}

function landlockCheck(): Check {
  const abi = probeLandlockAbi();
  return abi > 0
    ? {
        name: 'landlock',
        status: 'ok',
        detail: `ABI ${abi}${abi < 6 ? ' (no signal/abstract-socket scoping before ABI 6)' : ''}`,
      }
    : {
        name: 'landlock',
        status: 'degraded',
        detail: 'unavailable: the exec allowlist and the write second layer cannot be enforced',
        fix: 'boot with lsm=...,landlock on Linux 5.13+ (cells then need --allow-degraded landlock)',
      };
}

function cgroupsCheck(rootless: boolean): Check {
  const cg = probeCgroups(rootless);
  const usable = (['memory', 'pids', 'cpu'] as const).filter((c) => cg[c]);
  const missing = (['memory', 'pids', 'cpu'] as const).filter((c) => !cg[c]);
  return missing.length === 0
    ? {
        name: 'cgroups',
        status: 'ok',
        detail: `v${cg.version}, controllers ${usable.join(', ')} writable`,
      }
    : {
        name: 'cgroups',
        status: 'degraded',
        detail: `v${cg.version}: ${missing.join(', ')} limits cannot be enforced (${cg.notes.join('; ')})`,
        fix: rootless
          ? 'run as root, or on cgroup v2 delegate controllers to your user (systemd Delegate=yes); cells then need --allow-degraded cgroups'
          : 'mount the missing cgroup controllers',
      };
}
