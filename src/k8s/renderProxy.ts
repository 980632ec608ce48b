// The proxy tier of a cluster: `nanocell proxy --serve` as a Deployment behind a Service, the
// only way out of every sandbox pod, plus the DaemonSet that puts the seccomp profiles on
// every node. Pure.
import { LABELS, MANAGER, PROXY_PORTS, POD } from './constants.js';
import type { K8sObject } from './render.js';

export const PROXY_NAME = 'nanocell-proxy';
export const PROXY_LABELS = { [LABELS.component]: 'proxy' } as const;
/** The Secret holding the supervisors' control token; created by the operator, never rendered. */
const PROXY_CONTROL_SECRET = 'nanocell-proxy-control';

/** Ranges the proxy tier itself may never reach: the cluster, the node, cloud metadata. */
const PROXY_EGRESS_EXCEPT = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '169.254.0.0/16',
  '127.0.0.0/8',
];
const PROXY_EGRESS_EXCEPT_V6 = ['fc00::/7', 'fe80::/10', '::1/128', 'fd00:ec2::254/128'];

const restricted = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  privileged: false,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

export function renderProxyTier(o: {
  namespace: string;
  image: string;
  shape: string;
  seccompConfigMap: string;
}): K8sObject[] {
  const labels = { [LABELS.managedBy]: MANAGER, ...PROXY_LABELS };
  const { namespace } = o;
  const deployment = proxyDeployment(namespace, o.image, labels);
  const service = proxyService(namespace, labels);
  const networkPolicy = proxyNetworkPolicy(namespace, labels);
  return [deployment, service, networkPolicy, seccompInstaller(o)];
}

type Labels = Record<string, string>;

function proxyDeployment(namespace: string, image: string, labels: Labels): K8sObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: PROXY_NAME, namespace, labels },
    spec: {
      // One replica: a claim's rules live in the replica its supervisor pushed them to.
      replicas: 1,
      selector: { matchLabels: PROXY_LABELS },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'proxy',
              image,
              imagePullPolicy: 'IfNotPresent',
              command: ['nanocell', 'proxy', '--serve'],
              args: [
                `--listen=0.0.0.0:${PROXY_PORTS.egress}`,
                `--control=0.0.0.0:${PROXY_PORTS.control}`,
                '--control-token-file=/var/run/nanocell/control-token',
              ],
              ports: [
                { name: 'egress', containerPort: PROXY_PORTS.egress, protocol: 'TCP' },
                { name: 'control', containerPort: PROXY_PORTS.control, protocol: 'TCP' },
              ],
              resources: {
                requests: { cpu: '100m', memory: '128Mi' },
                limits: { cpu: '1', memory: '512Mi' },
              },
              securityContext: restricted,
              volumeMounts: [
                { name: 'control-token', mountPath: '/var/run/nanocell', readOnly: true },
              ],
            },
          ],
          volumes: [
            {
              name: 'control-token',
              secret: { secretName: PROXY_CONTROL_SECRET, defaultMode: 0o400 },
            },
          ],
        },
      },
    },
  };
}

function proxyService(namespace: string, labels: Labels): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: PROXY_NAME, namespace, labels },
    spec: {
      type: 'ClusterIP',
      selector: PROXY_LABELS,
      ports: [
        { name: 'egress', port: PROXY_PORTS.egress, targetPort: 'egress', protocol: 'TCP' },
        { name: 'control', port: PROXY_PORTS.control, targetPort: 'control', protocol: 'TCP' },
      ],
    },
  };
}

function proxyNetworkPolicy(namespace: string, labels: Labels): K8sObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: PROXY_NAME, namespace, labels },
    spec: {
      podSelector: { matchLabels: PROXY_LABELS },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { [LABELS.component]: 'cell' } } }],
          ports: [{ protocol: 'TCP', port: PROXY_PORTS.egress }],
        },
        // Supervisors run anywhere (CI runners, laptops through a tunnel); the port is
        // authenticated by the control token.
        { ports: [{ protocol: 'TCP', port: PROXY_PORTS.control }] },
      ],
      egress: [
        {
          to: [
            { ipBlock: { cidr: '0.0.0.0/0', except: PROXY_EGRESS_EXCEPT } },
            { ipBlock: { cidr: '::/0', except: PROXY_EGRESS_EXCEPT_V6 } },
          ],
        },
        // The cluster resolver, for the names the cells' rules allow.
        {
          to: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    },
  };
}

/**
 * Copies the shape's seccomp profile into every node's kubelet seccomp root. The kubelet reads
 * Localhost profiles only from the node's disk; clusters with the Security Profiles Operator
 * can load the same JSON as a SeccompProfile object instead (docs/kubernetes.md).
 */
function seccompInstaller(o: {
  namespace: string;
  image: string;
  shape: string;
  seccompConfigMap: string;
}): K8sObject {
  const name = `${o.shape}-seccomp-installer`;
  const labels = {
    [LABELS.managedBy]: MANAGER,
    [LABELS.component]: 'seccomp-installer',
    [LABELS.shape]: o.shape,
  };
  const dir = `/var/lib/kubelet/seccomp/${POD.seccompDir}`;
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name, namespace: o.namespace, labels },
    spec: {
      selector: {
        matchLabels: { [LABELS.component]: 'seccomp-installer', [LABELS.shape]: o.shape },
      },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          initContainers: [
            {
              name: 'install',
              image: o.image,
              command: ['/bin/sh', '-c', 'cp /profiles/*.json /host-seccomp/'],
              // Root only to write the node directory; nothing else.
              securityContext: {
                runAsUser: 0,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'], add: ['DAC_OVERRIDE'] },
              },
              volumeMounts: [
                { name: 'profiles', mountPath: '/profiles', readOnly: true },
                { name: 'host-seccomp', mountPath: '/host-seccomp' },
              ],
            },
          ],
          containers: [
            {
              name: 'hold',
              image: o.image,
              command: ['/bin/sh', '-c', 'exec sleep 2147483647'],
              resources: { limits: { cpu: '10m', memory: '16Mi' } },
              securityContext: restricted,
            },
          ],
          volumes: [
            { name: 'profiles', configMap: { name: o.seccompConfigMap } },
            { name: 'host-seccomp', hostPath: { path: dir, type: 'DirectoryOrCreate' } },
          ],
        },
      },
    },
  };
}
