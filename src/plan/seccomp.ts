// The cell's seccomp profile: generated from the typed tables in src/seccomp, with denials
// sent to the monitor (SCMP_ACT_NOTIFY) so every one is recorded.
import type { HostFacts } from '../host/facts.js';
import type { Policy } from '../policy/defaults.js';
import { buildSeccompProfile, compileSeccompBpf, type SeccompPlan } from '../seccomp/index.js';
import type { OciSeccomp } from './oci.js';
import { runtimeTraits } from '../runtime/traits.js';

/** The profile for a policy, before the per-cell listener path is known. */
export type CellSeccompPlan = Omit<SeccompPlan, 'profile'> & {
  profile: OciSeccomp;
  /** Denials go to the monitor (SCMP_ACT_NOTIFY); false where the runtime cannot pass them. */
  monitor: boolean;
  /**
   * With the monitor, the profile compiled to BPF (hex) for nanocell-init to install
   * (src/seccomp/bpf.ts says why not the runtime); the OCI spec then carries no profile.
   */
  bpf: string | undefined;
};

const cache = new Map<string, { plan: SeccompPlan; bpf: string | undefined }>();

export const CellSeccomp = {
  plan(o: {
    policy: Policy;
    host: HostFacts;
    /** The exec guard sees mmap(PROT_EXEC) of files (needsMapGuard); default true. */
    guardMappings?: boolean;
    disabled?: boolean;
  }): CellSeccompPlan | undefined {
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
      guardMappings: o.guardMappings ?? true,
    };
    // Building the profile (and its BPF) walks every syscall table; it depends only on these
    // options, so cells with the same policy share both: nothing in them is per cell.
    const key = JSON.stringify(opts);
    let hit = cache.get(key);
    if (!hit) {
      const plan = buildSeccompProfile({ ...opts, listenerPath: monitor ? '/' : undefined });
      const bpf = monitor ? compileSeccompBpf(plan.profile, opts.arch).toString('hex') : undefined;
      hit = { plan, bpf };
      cache.set(key, hit);
    }
    return { ...hit.plan, profile: hit.plan.profile as OciSeccomp, monitor, bpf: hit.bpf };
  },

  /** What the OCI spec carries: the profile only where the runtime installs the filter. */
  ociProfile(plan: CellSeccompPlan | undefined): OciSeccomp | undefined {
    return plan && !plan.bpf ? plan.profile : undefined;
  },
};
