// `nanocell doctor --backend k8s`: what the cluster offers the Kubernetes backend, each as a
// named check with a fix. Fail closed: a check that cannot be made is a failure, never a pass.
//   1. the agent-sandbox CRDs serve v1beta1, and a rendered shape is valid against the schemas
//      the cluster actually serves (ajv, unknown fields rejected);
//   2. the RuntimeClass the shape names exists;
//   3. RBAC: this identity may create/get/watch/delete claims and create pods/exec;
//   4. the proxy tier's Service exists;
//   5. the CNI enforces NetworkPolicy: a canary pod labelled like a cell tries to connect out
//      directly, which must fail, and to the proxy tier, which must work (else a pod with no
//      network at all would pass).
import type * as K8s from '@kubernetes/client-node';
import type { Check } from '../runtime/doctor.js';
import { resolvePolicy } from '../policy/load.js';
import { API_VERSION, CRDS, LABELS, MANAGER, PROXY_PORTS } from './constants.js';
import { crdCompiler, servedSchema } from './crdSchema.js';
import { ALWAYS_DEGRADED } from './mapping.js';
import { renderShape } from './render.js';
import { PROXY_NAME } from './renderProxy.js';
import { clientModule, loadKubeConfig, rawGetJson } from './client.js';

export interface K8sDoctorOptions {
  namespace: string;
  shape: string;
  runtimeClass?: string;
  /** An image with node (the proxy tier's image) for the NetworkPolicy canary. */
  canaryImage?: string;
  kubeconfig?: string;
  context?: string;
  canaryTimeoutMs?: number;
}

/** Addresses the canary tries to reach directly: a public one and the cluster resolver port. */
const CANARY_TARGETS = ['1.1.1.1:443', '8.8.8.8:53'];

export async function runK8sDoctor(o: K8sDoctorOptions): Promise<Check[]> {
  const k8s = await clientModule();
  const checks: Check[] = [];
  let kc: K8s.KubeConfig;
  try {
    kc = loadKubeConfig(k8s, o);
  } catch (e) {
    return [
      {
        name: 'kubeconfig',
        status: 'fail',
        detail: (e as Error).message,
        fix: 'set KUBECONFIG or pass --kubeconfig',
      },
    ];
  }
  checks.push({
    name: 'kubeconfig',
    status: 'ok',
    detail: `context ${kc.getCurrentContext()}, server ${kc.getCurrentCluster()?.server}`,
  });
  const step = async (name: string, fix: string, f: () => Promise<Omit<Check, 'name'>>) => {
    try {
      checks.push({ name, ...(await f()) });
    } catch (e) {
      checks.push({ name, status: 'fail', detail: errorText(e), fix });
    }
  };
  await step('agent-sandbox CRDs', 'install agent-sandbox v1.0 or newer (it serves v1beta1)', () =>
    crdCheck(kc, o),
  );
  if (o.runtimeClass) {
    const rc = o.runtimeClass;
    await step(
      `RuntimeClass ${rc}`,
      `install the ${rc} runtime on the nodes and its RuntimeClass`,
      async () => {
        const r = await kc.makeApiClient(k8s.NodeV1Api).readRuntimeClass({ name: rc });
        return { status: 'ok', detail: `handler ${r.handler}` };
      },
    );
  }
  await step(
    'RBAC',
    'bind a Role with these verbs in the namespace (docs/kubernetes.md, "Set-up")',
    () => rbacCheck(k8s, kc, o),
  );
  const core = kc.makeApiClient(k8s.CoreV1Api);
  let tierIP: string | undefined;
  await step(
    'proxy tier',
    'apply the rendered proxy tier (nanocell k8s render | kubectl apply -f -)',
    async () => {
      const svc = await core.readNamespacedService({ namespace: o.namespace, name: PROXY_NAME });
      tierIP = svc.spec?.clusterIP;
      return { status: 'ok', detail: `Service ${PROXY_NAME} at ${svc.spec?.clusterIP}` };
    },
  );
  await step(
    'NetworkPolicy enforced',
    'use a CNI that enforces NetworkPolicy (Calico, Cilium, ...) and apply the shape',
    () => canary(k8s, kc, core, o, tierIP),
  );
  return checks;
}

/** The CRDs serve API_VERSION and accept a rendered shape (ajv, unknown fields rejected). */
async function crdCheck(kc: K8s.KubeConfig, o: K8sDoctorOptions): Promise<Omit<Check, 'name'>> {
  const compile = crdCompiler();
  const problems: string[] = [];
  const validators = new Map<string, ReturnType<typeof compile>>();
  for (const name of Object.values(CRDS)) {
    const crd = await rawGetJson(
      kc,
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
    );
    const schema = servedSchema(crd, API_VERSION);
    if (!schema) problems.push(`${name} does not serve ${API_VERSION}`);
    else validators.set((crd.spec as { names: { kind: string } }).names.kind, compile(schema));
  }
  if (problems.length)
    return {
      status: 'fail',
      detail: problems.join('; '),
      fix: 'upgrade agent-sandbox to v1.0 or newer',
    };
  const shape = renderShape({
    policy: resolvePolicy({}),
    shape: o.shape,
    namespace: o.namespace,
    image: 'doctor.invalid/cell',
    replicas: 1,
    arch: 'x86_64',
    allowDegraded: [...ALWAYS_DEGRADED, 'landlock'],
    runtimeClass: o.runtimeClass,
  });
  for (const obj of shape.objects) {
    const v = validators.get(obj.kind);
    if (v && !v(structuredClone(obj)))
      problems.push(`${obj.kind}: ${v.errors?.[0]?.instancePath} ${v.errors?.[0]?.message}`);
  }
  if (problems.length)
    return {
      status: 'fail',
      detail: `the served schema rejects nanocell's objects: ${problems.join('; ')}`,
      fix: 'use the agent-sandbox version docs/kubernetes.md names',
    };
  return {
    status: 'ok',
    detail: `${Object.values(CRDS).length} CRDs serve ${API_VERSION}; a rendered shape is valid against them`,
  };
}

async function rbacCheck(
  k8s: typeof K8s,
  kc: K8s.KubeConfig,
  o: K8sDoctorOptions,
): Promise<Omit<Check, 'name'>> {
  const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
  const denied: string[] = [];
  const wants: [string, string, string, string?][] = [
    ...['create', 'get', 'watch', 'delete'].map(
      (v) => [v, 'extensions.agents.x-k8s.io', 'sandboxclaims'] as [string, string, string],
    ),
    ['get', 'extensions.agents.x-k8s.io', 'sandboxtemplates'],
    ['create', '', 'pods', 'exec'],
    ['get', '', 'services'],
  ];
  for (const [verb, group, resource, subresource] of wants) {
    const r = await authz.createSelfSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: {
          resourceAttributes: {
            namespace: o.namespace,
            verb,
            group,
            resource,
            ...(subresource ? { subresource } : {}),
          },
        },
      },
    });
    if (!r.status?.allowed)
      denied.push(`${verb} ${resource}${subresource ? `/${subresource}` : ''}`);
  }
  return denied.length
    ? { status: 'fail', detail: `not allowed: ${denied.join(', ')}` }
    : {
        status: 'ok',
        detail: 'claims: create/get/watch/delete; templates: get; pods/exec: create; services: get',
      };
}

async function canary(
  k8s: typeof K8s,
  kc: K8s.KubeConfig,
  core: K8s.CoreV1Api,
  o: K8sDoctorOptions,
  tierIP: string | undefined,
): Promise<Omit<Check, 'name'>> {
  if (!tierIP) {
    return {
      status: 'fail',
      detail: 'not checked: no proxy tier to reach',
      fix: 'apply the rendered proxy tier first',
    };
  }
  if (!o.canaryImage) {
    return {
      status: 'fail',
      detail: 'not checked: no canary image',
      fix: 'pass --canary-image (the proxy tier image, which has node)',
    };
  }
  const name = `nanocell-canary-${Date.now().toString(36)}`;
  // Exit 0: every direct target blocked AND the proxy tier reached (so "blocked" is the
  // NetworkPolicy, not a pod without a network); 1: a direct target reached; 2: no tier.
  const tier = `${tierIP.includes(':') ? `[${tierIP}]` : tierIP}:${PROXY_PORTS.egress}`;
  const script = `const net=require('net');const ts=${JSON.stringify([...CANARY_TARGETS, tier])};let n=ts.length;const reached=[];const done=()=>{if(--n)return;const direct=reached.filter(t=>t!==${JSON.stringify(tier)});console.log(direct.length?'REACHED '+direct.join(' '):reached.length?'BLOCKED':'NO-TIER');process.exit(direct.length?1:reached.length?0:2)};for(const t of ts){const i=t.lastIndexOf(':');const s=net.connect({host:t.slice(0,i).replace(/^\\[|\\]$/g,''),port:+t.slice(i+1),timeout:4000});let fin=false;const end=(ok)=>{if(fin)return;fin=true;s.destroy();if(ok)reached.push(t);done()};s.once('connect',()=>end(true));s.once('error',()=>end(false));s.once('timeout',()=>end(false))}`;
  await core.createNamespacedPod({ namespace: o.namespace, body: canaryPod(name, o, script) });
  try {
    const code = await podExitCode(k8s, kc, o.namespace, name, o.canaryTimeoutMs ?? 60_000);
    return canaryVerdict(code, tier);
  } finally {
    await core
      .deleteNamespacedPod({ namespace: o.namespace, name, gracePeriodSeconds: 0 })
      .catch(() => undefined);
  }
}

function canaryPod(name: string, o: K8sDoctorOptions, script: string): K8s.V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      labels: {
        [LABELS.managedBy]: MANAGER,
        [LABELS.component]: 'cell',
        [LABELS.shape]: o.shape,
      },
    },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      containers: [
        {
          name: 'canary',
          image: o.canaryImage,
          command: ['node', '-e', script],
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
          },
        },
      ],
    },
  };
}

function canaryVerdict(code: number | undefined, tier: string): Omit<Check, 'name'> {
  if (code === 0)
    return {
      status: 'ok',
      detail: `a cell-labelled pod reached the proxy tier but not ${CANARY_TARGETS.join(', ')} directly`,
    };
  if (code === 1)
    return {
      status: 'fail',
      detail: `a cell-labelled pod reached the network directly: NetworkPolicy is not enforced`,
    };
  if (code === 2)
    return {
      status: 'fail',
      detail: `a cell-labelled pod reached nothing, not even the proxy tier at ${tier}: enforcement is unknown`,
    };
  return {
    status: 'fail',
    detail: `the canary ended with ${code ?? 'no exit code'}; enforcement is unknown`,
  };
}

/** Watches the pod until its container terminated; undefined on timeout. */
function podExitCode(
  k8s: typeof K8s,
  kc: K8s.KubeConfig,
  namespace: string,
  name: string,
  timeoutMs: number,
): Promise<number | undefined> {
  return new Promise((resolve) => {
    let controller: AbortController | undefined;
    let done = false;
    const finish = (v: number | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      controller?.abort();
      resolve(v);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    void new k8s.Watch(kc)
      .watch(
        `/api/v1/namespaces/${namespace}/pods`,
        { fieldSelector: `metadata.name=${name}` },
        (_type: string, pod: K8s.V1Pod) => {
          const t = pod.status?.containerStatuses?.[0]?.state?.terminated;
          if (t) finish(t.exitCode);
        },
        () => finish(undefined),
      )
      .then(
        (c) => {
          controller = c;
          if (done) c.abort();
        },
        () => finish(undefined),
      );
  });
}

function errorText(e: unknown): string {
  const code = (e as { code?: number }).code;
  const msg = ((e as Error).message ?? String(e)).split('\n')[0]!.slice(0, 200);
  return code ? `${code}: ${msg}` : msg;
}
