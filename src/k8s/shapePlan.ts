// What a policy asks of a sandbox shape, decided once for `k8s render` and for `run --backend
// k8s` (which checks the shape it claims from against its own policy): the degradations, refused
// unless accepted exactly as a local cell refuses them; the exec rule (the local one); whether
// Landlock applies; and the digest of everything the pod template takes from the policy. Pure.
import { createHash } from 'node:crypto';
import type { Policy } from '../policy/defaults.js';
import { planExecRule } from '../plan/execRule.js';
import { NanocellError } from '../util/errors.js';
import { POD } from './constants.js';
import { ALWAYS_DEGRADED, type K8sDegradableControl } from './mapping.js';
import { checkDnsLabel } from './names.js';

interface ShapeDegradation {
  control: string;
  reason: string;
}

export interface ShapePlan {
  degradations: ShapeDegradation[];
  runtimeClass?: string;
  landlock: boolean;
  /** Landlock's execute paths inside the pod. */
  execPaths: string[];
  /** Of the policy fields the pod template is made from (see policyDigest). */
  digest: string;
}

const REASONS: Record<K8sDegradableControl, string> = {
  pids: 'a pod has no per-pod process limit; only the node-wide kubelet --pod-max-pids applies',
  rlimits: 'Kubernetes sets no rlimits, so limits.files is the node runtime default',
  'noexec-tmp':
    'emptyDir volumes cannot be mounted noexec: Landlock still refuses execve there, but not ld.so or mmap(PROT_EXEC)',
  'protected-readonly':
    'protected paths are writable in the pod (apply still refuses every change to them)',
  'syscall-audit':
    'the kubelet loads seccomp profiles without a listener: denials are not recorded',
  'exec-audit': 'there is no seccomp monitor on the node: execs are not recorded',
};

/**
 * The shape for `policy`. `runtimeClass` is the --runtime-class override (render) or what the
 * cluster's template names (run). Throws a POLICY error naming every refused control.
 */
export function planShape(
  policy: Policy,
  o: { runtimeClass?: string; allowDegraded: readonly string[] },
): ShapePlan {
  if (policy.mounts?.length) {
    throw new NanocellError(
      `policy mounts (${policy.mounts.map((m) => (typeof m === 'string' ? m : m.host)).join(', ')}) are host paths, which no pod has`,
      'drop mounts: from the policy for --backend k8s and put those tools in the cell image',
      'POLICY',
    );
  }
  if (policy.secrets.length) {
    throw new NanocellError(
      `policy secrets (${policy.secrets.map((s) => s.name).join(', ')}) cannot be brokered on Kubernetes yet`,
      'run this policy locally, or drop secrets: for --backend k8s (the value would otherwise have to enter the pod)',
      'POLICY',
    );
  }
  if (policy.hostConfig.length) {
    throw new NanocellError(
      `policy hostConfig (${policy.hostConfig.join(', ')}) reads the developer's own files, which no pod has`,
      'drop hostConfig: from the policy for --backend k8s and put registry settings in the cell image',
      'POLICY',
    );
  }
  if (policy.agent) {
    throw new NanocellError(
      `policy preset ${policy.agent.name} runs a host install of the agent, which no pod has`,
      'drop preset: for --backend k8s and put the agent in the cell image',
      'POLICY',
    );
  }
  if (policy.toolchains.length) {
    throw new NanocellError(
      `policy toolchains (${policy.toolchains.join(', ')}) are host installs, which no pod has`,
      'drop toolchains: from the policy for --backend k8s and put them in the cell image',
      'POLICY',
    );
  }
  const accepted = new Set<string>([...policy.allowDegraded, ...o.allowDegraded]);
  const degradations: ShapeDegradation[] = [];
  const refused: string[] = [];
  const degrade = (control: string, reason: string) => {
    if (accepted.has(control)) degradations.push({ control, reason });
    else refused.push(control);
  };
  // 1. What no pod can enforce as a local cell does. The exec rule is the local one (one fact
  //    for both walls); only a place a local cell would mount noexec loses something here.
  const exec = planExecRule(policy.exec.allow.map(execPath), POD.workspace, policy.exec.scratch);
  const noexecSomewhere = Object.values(exec.mounts).some((executable) => !executable);
  for (const c of ALWAYS_DEGRADED) {
    if (c === 'protected-readonly' && policy.workspace.protected.length === 0) continue;
    if (c === 'noexec-tmp' && !noexecSomewhere) continue;
    degrade(c, REASONS[c]);
  }
  // 2. The runtime, as locally: gVisor has no Landlock.
  const runtimeClass = o.runtimeClass ?? (policy.runtime.name === 'runsc' ? 'gvisor' : undefined);
  if (runtimeClass) checkDnsLabel('--runtime-class', runtimeClass, 253);
  const landlock = runtimeClass !== 'gvisor' && policy.runtime.name !== 'runsc';
  if (!landlock) {
    degrade(
      'landlock',
      'gVisor does not implement Landlock, so the exec allowlist is not enforced',
    );
  }
  if (refused.length) {
    throw new NanocellError(
      `this shape cannot enforce ${refused.join(', ')} on Kubernetes; refusing it`,
      `accept them with --allow-degraded ${refused.join(',')} (docs/kubernetes.md lists what each loses)`,
      'POLICY',
    );
  }
  return {
    degradations,
    ...(runtimeClass ? { runtimeClass } : {}),
    landlock,
    execPaths: exec.paths,
    digest: policyDigest(policy),
  };
}

/**
 * The policy fields the pod template is made from: its limits, exec rule, seccomp rules and
 * runtime. The rest (network, timeout, output, workspace scope, env) the supervisor applies per
 * claim. `run` compares this with the template's annotation, so a shape rendered from another
 * policy is never claimed for this one.
 */
function policyDigest(policy: Policy): string {
  const { memory, cpus, disk, tmp, home } = policy.limits;
  const basis = {
    v: 1,
    limits: { memory, cpus, disk, tmp, home },
    exec: policy.exec,
    syscalls: policy.syscalls,
    runtime: policy.runtime.name,
  };
  return createHash('sha256').update(JSON.stringify(basis)).digest('hex').slice(0, 32);
}

/** Locally exec.allow globs are expanded on the host; a pod's paths are known only as written. */
function execPath(pattern: string): string {
  const p = pattern.replace(/^\$WORKSPACE(?=\/|$)/, POD.workspace).replace(/\/\*\*$/, '');
  if (!p.startsWith('/') || /[*?[\]{}]/.test(p)) {
    throw new NanocellError(
      `exec.allow entry ${JSON.stringify(pattern)} cannot be resolved inside a pod`,
      'use an absolute file or directory path, optionally ending in /**',
      'POLICY',
    );
  }
  return p;
}
