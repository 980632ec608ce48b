// The cell's seccomp profile: generated from the typed tables in src/seccomp, with denials
// sent to the monitor (SCMP_ACT_NOTIFY) so every one is recorded.
import type { HostFacts } from '../host/facts.js';
import type { Policy } from '../policy/defaults.js';
import { buildSeccompProfile, type SeccompPlan } from '../seccomp/index.js';
import type { OciSeccomp } from './oci.js';

export const CellSeccomp = {
  plan(o: {
    policy: Policy;
    host: HostFacts;
    listenerPath: string;
    disabled?: boolean;
  }): (Omit<SeccompPlan, 'profile'> & { profile: OciSeccomp }) | undefined {
    if (o.disabled) return undefined;
    // gVisor implements its own syscall surface and does not pass notifications through.
    const monitor = o.policy.runtime.name !== 'runsc';
    const plan = buildSeccompProfile({
      arch: o.host.arch,
      listenerPath: monitor ? o.listenerPath : undefined,
      monitor,
      allow: o.policy.syscalls.allow,
      deny: o.policy.syscalls.deny,
      unsafeAllowForbidden: o.policy.syscalls.unsafeAllowForbidden,
    });
    return { ...plan, profile: plan.profile as OciSeccomp };
  },
};
