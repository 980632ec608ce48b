// Policy → the Kubernetes objects of one sandbox "shape". Pure: no cluster, no files. Every
// policy field is handled as docs/kubernetes.md's table (mapping.ts) says; a degraded one is
// refused unless the user accepted its control, exactly as planCell does locally.
import { createHash } from 'node:crypto';
import type { Policy } from '../policy/defaults.js';
import { buildSeccompProfile, type SeccompArch } from '../seccomp/index.js';
import { NanocellError } from '../util/errors.js';
import {
  ANNOTATIONS,
  CELL_CONTAINER,
  EXTENSIONS_API,
  LABELS,
  MANAGER,
  POD,
  PROXY_PORTS,
} from './constants.js';
import { bytesQuantity, checkDnsLabel, cpuQuantity } from './names.js';
import { renderProxyTier, PROXY_LABELS } from './renderProxy.js';
import { podSecurityChecks } from './checks.js';
import { planShape, type ShapePlan } from './shapePlan.js';

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
} & Record<string, unknown>;

export interface RenderInput {
  policy: Policy;
  /** The shape's name: names the template and the warm pool. */
  shape: string;
  namespace: string;
  /** The cell image: /usr with the toolchain, and nanocell's init at /.nanocell/init. */
  image: string;
  /** The proxy tier's image (nanocell's CLI); default: the cell image. */
  proxyImage?: string;
  replicas: number;
  /** Overrides the runtime's RuntimeClass (e.g. kata-qemu, kata-clh). */
  runtimeClass?: string;
  arch: SeccompArch;
  /** Controls accepted in addition to the policy's allowDegraded. */
  allowDegraded: readonly string[];
}

export interface Rendered {
  objects: K8sObject[];
  /** The seccomp profile file every node needs below its kubelet seccomp root. */
  seccomp: { file: string; json: string };
  degradations: ShapePlan['degradations'];
}

export function renderShape(input: RenderInput): Rendered {
  const { policy } = input;
  const shape = checkDnsLabel('shape', input.shape, 50);
  const namespace = checkDnsLabel('namespace', input.namespace);
  if (!Number.isInteger(input.replicas) || input.replicas < 0 || input.replicas > 1000) {
    throw new NanocellError(
      `--replicas ${input.replicas} is out of range`,
      'use 0 to 1000',
      'USAGE',
    );
  }
  const sp = planShape(policy, input);
  const { landlock, runtimeClass } = sp;

  const { json, file: seccompFile } = renderSeccompProfile(input, shape);

  const labels = { [LABELS.managedBy]: MANAGER, [LABELS.shape]: shape };
  const cellLabels = { ...labels, [LABELS.component]: 'cell' };
  const podSpec = renderPodSpec(input, {
    landlock,
    runtimeClass,
    seccompFile,
    execPaths: sp.execPaths,
  });
  podSecurityChecks(podSpec);

  const template: K8sObject = {
    apiVersion: EXTENSIONS_API,
    kind: 'SandboxTemplate',
    metadata: {
      name: shape,
      namespace,
      labels,
      // What `run --backend k8s` checks before claiming from this shape (shapePlan.ts).
      annotations: {
        [ANNOTATIONS.policyDigest]: sp.digest,
        [ANNOTATIONS.degraded]: sp.degradations.map((d) => d.control).join(','),
      },
    },
    spec: {
      podTemplate: { metadata: { labels: cellLabels }, spec: podSpec },
      // nanocell ships its own NetworkPolicy below: the controller must not add another.
      networkPolicyManagement: 'Unmanaged',
      envVarsInjectionPolicy: 'Disallowed',
      volumeClaimTemplatesPolicy: 'Disallowed',
    },
  };
  const warmPool: K8sObject = {
    apiVersion: EXTENSIONS_API,
    kind: 'SandboxWarmPool',
    metadata: { name: shape, namespace, labels },
    spec: {
      replicas: input.replicas,
      sandboxTemplateRef: { name: shape },
      // A changed template replaces warm sandboxes: none is claimed with a stale policy.
      updateStrategy: { type: 'Recreate' },
    },
  };
  const cellNetworkPolicy = renderCellNetworkPolicy(shape, namespace, labels);
  const seccompConfigMap: K8sObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: `${shape}-seccomp`, namespace, labels },
    data: { [seccompFile]: json },
  };
  const objects = [
    template,
    warmPool,
    cellNetworkPolicy,
    seccompConfigMap,
    ...renderProxyTier({
      namespace,
      image: input.proxyImage ?? input.image,
      shape,
      seccompConfigMap: seccompConfigMap.metadata.name,
    }),
  ];
  return { objects, seccomp: { file: seccompFile, json }, degradations: sp.degradations };
}

/** The seccomp profile: the local one with errno answers (no listener on the node). */
function renderSeccompProfile(input: RenderInput, shape: string): { json: string; file: string } {
  const { policy } = input;
  const plan = buildSeccompProfile({
    arch: input.arch,
    monitor: false,
    allow: policy.syscalls.allow,
    deny: policy.syscalls.deny,
    unsafeAllowForbidden: policy.syscalls.unsafeAllowForbidden,
  });
  const json = `${JSON.stringify(plan.profile, null, 2)}\n`;
  return { json, file: `${shape}-${shortHash(json)}.json` };
}

/** The cells' NetworkPolicy: egress only to the proxy tier's port, no ingress. */
function renderCellNetworkPolicy(
  shape: string,
  namespace: string,
  labels: Record<string, string>,
): K8sObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: `${shape}-cells`, namespace, labels },
    spec: {
      podSelector: { matchLabels: { [LABELS.component]: 'cell', [LABELS.shape]: shape } },
      policyTypes: ['Ingress', 'Egress'],
      // No ingress at all; pods/exec goes through the kubelet, not the pod network.
      ingress: [],
      // Only the proxy tier's egress port: no DNS, no other pod, no node, no metadata.
      egress: [
        {
          to: [{ podSelector: { matchLabels: PROXY_LABELS } }],
          ports: [{ protocol: 'TCP', port: PROXY_PORTS.egress }],
        },
      ],
    },
  };
}

function renderPodSpec(
  input: RenderInput,
  o: { landlock: boolean; runtimeClass?: string; seccompFile: string; execPaths: string[] },
): Record<string, unknown> {
  const { limits } = input.policy;
  const memVolume = (name: string, bytes: number) => ({
    name,
    emptyDir: { medium: 'Memory', sizeLimit: bytesQuantity(bytes) },
  });
  const resources = {
    limits: { memory: bytesQuantity(limits.memory), cpu: cpuQuantity(limits.cpus) },
    requests: { memory: bytesQuantity(limits.memory), cpu: cpuQuantity(limits.cpus) },
  };
  return {
    ...(o.runtimeClass ? { runtimeClassName: o.runtimeClass } : {}),
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    hostNetwork: false,
    hostPID: false,
    hostIPC: false,
    // A user namespace per pod (Kubernetes 1.30+): pod root is not node root.
    hostUsers: false,
    shareProcessNamespace: false,
    restartPolicy: 'Never',
    terminationGracePeriodSeconds: 5,
    // No resolver at all: names are resolved by the proxy tier. The API requires a
    // nameserver with dnsPolicy None; the pod's own loopback answers nothing.
    dnsPolicy: 'None',
    dnsConfig: {
      nameservers: ['127.0.0.1'],
      searches: [],
      options: [{ name: 'ndots', value: '0' }],
    },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: POD.uid,
      runAsGroup: POD.gid,
      fsGroup: POD.gid,
      seccompProfile: { type: 'Localhost', localhostProfile: `${POD.seccompDir}/${o.seccompFile}` },
    },
    containers: [
      {
        name: CELL_CONTAINER,
        image: input.image,
        imagePullPolicy: 'IfNotPresent',
        command: [POD.init, ...initArgs(o.landlock, o.execPaths)],
        workingDir: POD.workspace,
        env: [
          { name: 'HOME', value: POD.home },
          { name: 'PATH', value: '/usr/local/bin:/usr/bin:/bin' },
        ],
        resources,
        securityContext: {
          runAsNonRoot: true,
          runAsUser: POD.uid,
          runAsGroup: POD.gid,
          privileged: false,
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
          procMount: 'Default',
        },
        volumeMounts: [
          { name: 'workspace', mountPath: POD.workspace },
          { name: 'tmp', mountPath: '/tmp' },
          { name: 'home', mountPath: POD.home },
          { name: 'shm', mountPath: '/dev/shm' },
          { name: 'run', mountPath: '/run/nanocell' },
        ],
      },
    ],
    volumes: [
      memVolume('workspace', limits.disk),
      memVolume('tmp', limits.tmp),
      memVolume('home', limits.home),
      memVolume('shm', limits.tmp),
      memVolume('run', 1024 * 1024),
    ],
  };
}

/** init's arguments: the control socket sessions attach to, and the Landlock rules. */
function initArgs(landlock: boolean, execPaths: readonly string[]): string[] {
  const args = ['--control-listen', POD.controlSocket, '--landlock', landlock ? 'required' : 'off'];
  if (!landlock) return args;
  args.push('--ll-read', '/');
  for (const p of execPaths) args.push('--ll-exec', p);
  for (const p of [POD.workspace, '/tmp', POD.home, '/dev', '/run/nanocell'])
    args.push('--ll-write', p);
  return args;
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
