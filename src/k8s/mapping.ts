// How every policy field reaches a Kubernetes sandbox: the one table the renderer, the
// doctor and docs/kubernetes.md follow. A field is `exact` (enforced as strictly as in a local
// cell), `client` (enforced by the supervisor, the same code as locally), or `degraded`
// (weaker than locally, named by a control the user must accept with --allow-degraded).
// Pure data.

/** Controls that only the Kubernetes backend can lose; accepted with --allow-degraded. */
export const K8S_DEGRADABLE_CONTROLS = [
  'pids',
  'rlimits',
  'noexec-tmp',
  'protected-readonly',
  'syscall-audit',
  'exec-audit',
] as const;
export type K8sDegradableControl = (typeof K8S_DEGRADABLE_CONTROLS)[number];

type Enforcement = 'exact' | 'client' | 'degraded' | 'not-applicable';

export interface FieldMapping {
  /** A policy field, dotted. */
  field: string;
  /** Where it lands: an object field, or the component that enforces it. */
  target: string;
  enforcement: Enforcement;
  /** For degraded fields: the control to accept, and what is lost. */
  control?: K8sDegradableControl | 'landlock' | 'disk-cap';
  note: string;
}

export const POLICY_MAPPING: readonly FieldMapping[] = [
  {
    field: 'limits.memory',
    target: 'podTemplate.spec.containers[cell].resources.limits.memory (requests equal)',
    enforcement: 'exact',
    note: 'the memory-backed volumes below count against it, as tmpfs counts against a local cell',
  },
  {
    field: 'limits.cpus',
    target: 'podTemplate.spec.containers[cell].resources.limits.cpu',
    enforcement: 'exact',
    note: 'CFS quota, as locally',
  },
  {
    field: 'limits.pids',
    target: 'none (kubelet --pod-max-pids is node-wide)',
    enforcement: 'degraded',
    control: 'pids',
    note: 'a pod has no per-pod pids field; the node-wide kubelet cap applies instead',
  },
  {
    field: 'limits.timeout',
    target: 'supervisor timer + SandboxClaim spec.lifecycle.shutdownTime',
    enforcement: 'client',
    note: 'the supervisor kills the command; the claim expires shortly after as a backstop',
  },
  {
    field: 'limits.output',
    target: 'supervisor (exec stream caps)',
    enforcement: 'client',
    note: 'bytes past the cap are drained and dropped, as locally',
  },
  {
    field: 'limits.disk',
    target: 'volumes[workspace].emptyDir {medium: Memory, sizeLimit}',
    enforcement: 'exact',
    note: 'a memory-backed emptyDir is a tmpfs of that size: writes past it fail with ENOSPC',
  },
  {
    field: 'limits.tmp',
    target: 'volumes[tmp].emptyDir {medium: Memory, sizeLimit}',
    enforcement: 'exact',
    note: 'size only: see noexec-tmp',
  },
  {
    field: 'limits.home',
    target: 'volumes[home].emptyDir {medium: Memory, sizeLimit}',
    enforcement: 'exact',
    note: 'size only: see noexec-tmp',
  },
  {
    field: 'limits.files',
    target: 'none (the node runtime sets RLIMIT_NOFILE)',
    enforcement: 'degraded',
    control: 'rlimits',
    note: 'Kubernetes has no rlimit fields; the container runtime default applies',
  },
  {
    field: 'noexec mounts (workspace, /tmp, HOME, /dev/shm)',
    target: 'none (emptyDir has no mount options)',
    enforcement: 'degraded',
    control: 'noexec-tmp',
    note: "only when exec.allow leaves a place noexec locally (not by default); init's Landlock exec rules, the local ones, still refuse execve there",
  },
  {
    field: 'workspace.include / exclude / defaultExcludes',
    target: 'supervisor (what goes into the workspace tar)',
    enforcement: 'client',
    note: 'hidden files never leave the machine',
  },
  {
    field: 'workspace.protected / defaultProtected',
    target: 'supervisor (apply refuses them)',
    enforcement: 'degraded',
    control: 'protected-readonly',
    note: 'visible and writable in the pod (no read-only bind mounts); apply still refuses every change to them',
  },
  {
    field: 'exec.allow',
    target: "init's Landlock rules (container args)",
    enforcement: 'exact',
    note: 'on runc/crun/kata nodes; gVisor has no Landlock: the landlock control, as locally',
  },
  {
    field: 'exec audit (monitor)',
    target: 'none (no seccomp listener on the node)',
    enforcement: 'degraded',
    control: 'exec-audit',
    note: 'execs are not recorded; the exec allowlist still applies',
  },
  {
    field: 'network.allow / deny / cidrs / hosts',
    target: 'proxy tier rules for this claim + NetworkPolicy (egress only to the proxy tier)',
    enforcement: 'exact',
    note: 'the same rule engine as locally; the pod has no DNS and no other route out',
  },
  {
    field: 'syscalls.allow / deny / unsafeAllowForbidden',
    target: 'securityContext.seccompProfile {type: Localhost}',
    enforcement: 'exact',
    note: 'the same generated profile, with denials answered by errno',
  },
  {
    field: 'seccomp denial records',
    target: 'none (the kubelet loads profiles without a listener)',
    enforcement: 'degraded',
    control: 'syscall-audit',
    note: 'denials are enforced but not recorded',
  },
  {
    field: 'runtime.name',
    target: 'podTemplate.spec.runtimeClassName',
    enforcement: 'exact',
    note: 'runsc → gvisor; runc/crun → the cluster default unless --runtime-class names one (kata-*)',
  },
  {
    field: 'runtime.path',
    target: 'none',
    enforcement: 'not-applicable',
    note: "the node's RuntimeClass handler picks the binary",
  },
  {
    field: 'env',
    target: 'init exec requests (E frames)',
    enforcement: 'exact',
    note: 'per command, as locally; nothing lands in the pod spec',
  },
  {
    field: 'mounts',
    target: 'render and run refuse a policy with host mounts',
    enforcement: 'not-applicable',
    note: "a path on the developer's machine does not exist on a node; bake tools into the cell image",
  },
  {
    field: 'toolchains',
    target: 'render and run refuse a policy with toolchains',
    enforcement: 'not-applicable',
    note: "the developer's own installs are host paths; put the toolchain in the cell image",
  },
  {
    field: 'secrets',
    target: 'render and run refuse a policy with secrets',
    enforcement: 'not-applicable',
    note: 'the proxy tier does not broker credentials yet; a secret never falls back to the pod env',
  },
  {
    field: 'hostConfig',
    target: 'none',
    enforcement: 'not-applicable',
    note: "the developer's package-manager files are host files; bake registry settings into the cell image",
  },
  {
    field: 'allowDegraded',
    target: 'render and run refuse a degraded field unless listed (or passed as --allow-degraded)',
    enforcement: 'exact',
    note: 'the Kubernetes-only controls are accepted with --allow-degraded only',
  },
  {
    field: 'preset',
    target: 'render and run refuse a policy with an agent preset',
    enforcement: 'not-applicable',
    note: "a preset's binary is a host install and its key is brokered by the local proxy; bake the agent into the cell image",
  },
  {
    field: 'denialNotes',
    target: 'none',
    enforcement: 'not-applicable',
    note: 'denial notes come from the local monitor and proxy; a pod records refusals only',
  },
  {
    field: 'version',
    target: 'none',
    enforcement: 'not-applicable',
    note: 'the policy format version',
  },
];

/**
 * Controls every rendered shape loses whatever the policy says: today all of the
 * Kubernetes-only ones (protected-readonly only when the policy protects a path).
 */
export const ALWAYS_DEGRADED: readonly K8sDegradableControl[] = [...K8S_DEGRADABLE_CONTROLS];
