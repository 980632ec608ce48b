// The cell's seccomp profile: generated from the typed tables in src/seccomp, with denials
// sent to the monitor (SCMP_ACT_NOTIFY) so every one is recorded.
import type { HostFacts } from '../host/facts.js';
import type { Policy } from '../policy/defaults.js';
import { buildSeccompProfile, type SeccompPlan } from '../seccomp/index.js';
import type { OciSeccomp } from './oci.js';
import { runtimeTraits } from '../runtime/traits.js';

const cache = new Map<string, SeccompPlan>();

export const CellSeccomp = {
  plan(o: {
    policy: Policy;
    host: HostFacts;
    listenerPath: string;
    disabled?: boolean;
  }): (Omit<SeccompPlan, 'profile'> & { profile: OciSeccomp }) | undefined {
    if (o.disabled) return undefined;
    // gVisor implements its own syscall surface and does not pass notifications through: the
    // same rules then answer with their errno directly (plan.ts reports the lost audit).
    const monitor = runtimeTraits(o.policy.runtime.name).seccompNotify;
    const opts = {
      arch: o.host.arch,
      monitor,
      allow: o.policy.syscalls.allow,
      deny: o.policy.syscalls.deny,
      unsafeAllowForbidden: o.policy.syscalls.unsafeAllowForbidden,
    };
    // Building the profile walks every syscall table; it depends only on these options, so
    // cells with the same policy share it. Only the listener path differs per cell.
    const key = JSON.stringify(opts);
    let plan = cache.get(key);
    if (!plan) {
      plan = buildSeccompProfile({ ...opts, listenerPath: monitor ? '/' : undefined });
      cache.set(key, plan);
    }
    const profile = { ...(plan.profile as OciSeccomp) };
    if (monitor) profile.listenerPath = o.listenerPath;
    return { ...plan, profile };
  },
};
