// `nanocell k8s render`: every object checked against published schemas (the agent-sandbox
// CRDs' v1beta1 openAPIV3Schema with unknown fields rejected; Kubernetes' own schemas via
// kubernetes-models), the pod's security checks, the degradation rules, and golden output
// for every shipped preset (NANOCELL_UPDATE_GOLDEN=1 rewrites the golden files).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderFromOpts, toYaml } from '../../../src/cli/k8s.js';
import { PRESETS } from '../../../src/k8s/presets.js';
import { ALWAYS_DEGRADED, POLICY_MAPPING } from '../../../src/k8s/mapping.js';
import { failedPodChecks } from '../../../src/k8s/checks.js';
import { policySchema } from '../../../src/policy/schema.js';
import { NanocellError } from '../../../src/util/errors.js';
import { loadCrdValidators, metadataProblems, validateBuiltin } from '../../helpers/k8sSchemas.js';

const GOLDEN = path.join(path.dirname(new URL(import.meta.url).pathname), 'golden');
const crds = loadCrdValidators();
const base = {
  namespace: 'nanocell',
  image: 'registry.example/nanocell-cell:test',
  replicas: '2',
  arch: 'x86_64' as const,
  allowDegraded: [...ALWAYS_DEGRADED],
};
// Rendered objects are walked by path; their shape is what the schemas check.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

function validateAll(objects: Obj[]): void {
  for (const o of objects) {
    expect(metadataProblems(o.metadata), `${o.kind} metadata`).toEqual([]);
    const crd = crds.byKind.get(o.kind);
    if (crd) {
      const ok = crd(o);
      expect(crd.errors ?? [], `${o.kind} against its CRD`).toEqual([]);
      expect(ok).toBe(true);
      if (o.kind === 'SandboxTemplate') {
        // The embedded pod also against Kubernetes' own Pod schema.
        validateBuiltin({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'p' },
          spec: o.spec.podTemplate.spec,
        });
      }
    } else {
      validateBuiltin(o);
    }
  }
}

describe('k8s render', () => {
  for (const preset of Object.keys(PRESETS)) {
    it(`preset ${preset}: valid against the CRDs and Kubernetes schemas, and matches its golden file`, () => {
      const r = renderFromOpts({ ...base, preset });
      expect(r.objects.map((o) => o.kind)).toEqual([
        'SandboxTemplate',
        'SandboxWarmPool',
        'NetworkPolicy',
        'ConfigMap',
        'Deployment',
        'Service',
        'NetworkPolicy',
        'DaemonSet',
      ]);
      validateAll(r.objects);
      const text = toYaml(r);
      const file = path.join(GOLDEN, `${preset}.yaml`);
      if (process.env.NANOCELL_UPDATE_GOLDEN === '1') {
        fs.mkdirSync(GOLDEN, { recursive: true });
        fs.writeFileSync(file, text);
      }
      expect(text).toBe(fs.readFileSync(file, 'utf8'));
    });
  }

  it('an unknown field is rejected: anywhere in the template (strict CRD schema), and in built-in kinds', () => {
    const r = renderFromOpts({ ...base, preset: 'default' });
    const t = structuredClone(r.objects[0]) as Obj;
    t.spec.podTemplate.spec.containers[0].securityContext.allowPrivilegeEscalaton = false;
    const v = crds.byKind.get('SandboxTemplate')!;
    expect(v(t)).toBe(false);
    expect(v.errors?.[0]?.keyword).toBe('additionalProperties');
    // Kubernetes' own kinds too: a typo in the NetworkPolicy or the proxy Deployment.
    const np = structuredClone(r.objects[2]) as Obj;
    np.spec.egres = np.spec.egress;
    expect(() => validateBuiltin(np)).toThrow(/unknown fields \.spec\.egres$/);
    const dep = structuredClone(r.objects[4]) as Obj;
    dep.spec.template.spec.containers[0].securityContext.readOnlyRootFs = true;
    expect(() => validateBuiltin(dep)).toThrow(/containers\[0\]\.securityContext\.readOnlyRootFs/);
    // The one CEL rule in the schemas is about updates (oldSelf), which ajv cannot check.
    expect(crds.celRules.every((r) => r.includes('oldSelf'))).toBe(true);
  });

  it('a claim for the shape is valid and gets the CRD defaults', () => {
    const claim: Obj = {
      apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
      kind: 'SandboxClaim',
      metadata: { name: 'nc-abc' },
      spec: {
        warmPoolRef: { name: 'default' },
        lifecycle: { shutdownTime: '2026-12-02T20:00:00Z' },
      },
    };
    const v = crds.byKind.get('SandboxClaim')!;
    expect(v(claim), JSON.stringify(v.errors)).toBe(true);
    expect(claim.spec.lifecycle.shutdownPolicy).toBe('Retain');
    expect(v({ ...claim, spec: { lifecycle: { shutdownTime: 'tomorrow' } } })).toBe(false);
  });

  it('the pod runs init with no token, links, DNS, capabilities or writable root', () => {
    const r = renderFromOpts({ ...base, preset: 'node' });
    const pod = (r.objects[0] as Obj).spec.podTemplate.spec;
    expect(failedPodChecks(pod)).toEqual([]);
    expect(pod.containers[0].command.slice(0, 3)).toEqual([
      '/.nanocell/init',
      '--control-listen',
      '/run/nanocell/control.sock',
    ]);
    expect(pod.runtimeClassName).toBeUndefined();
    expect(pod.securityContext.seccompProfile.localhostProfile).toBe(`nanocell/${r.seccomp.file}`);
    const workspace = pod.volumes.find((v: Obj) => v.name === 'workspace');
    expect(workspace.emptyDir).toEqual({ medium: 'Memory', sizeLimit: String(1024 ** 3) });
    expect(pod.containers[0].resources.limits).toEqual({
      memory: String(2 * 1024 ** 3),
      cpu: '2000m',
    });
    // Each check catches what it names.
    const broken = structuredClone(pod);
    broken.automountServiceAccountToken = true;
    broken.containers[0].securityContext.capabilities = { drop: ['ALL'], add: ['NET_RAW'] };
    expect(failedPodChecks(broken)).toEqual(['no service-account token', 'no capabilities']);
  });

  it('seccomp profile: the local rules answered by errno, no notify, no listener', () => {
    const r = renderFromOpts({ ...base, preset: 'default' });
    const profile = JSON.parse(r.seccomp.json);
    expect(r.seccomp.json).not.toContain('SCMP_ACT_NOTIFY');
    expect(profile.listenerPath).toBeUndefined();
    const denied = profile.syscalls.filter((s: Obj) => s.names.includes('ptrace'));
    expect(denied[0].action).toBe('SCMP_ACT_ERRNO');
  });

  it('runsc maps to gvisor and needs landlock accepted; kata by --runtime-class', () => {
    const dir = fs.mkdtempSync('/var/tmp/nanocell-k8s-');
    try {
      const policy = path.join(dir, 'p.yaml');
      fs.writeFileSync(policy, 'runtime: { name: runsc }\n');
      expect(() => renderFromOpts({ ...base, preset: 'default', policy })).toThrow(/landlock/);
      const r = renderFromOpts({
        ...base,
        preset: 'default',
        policy,
        allowDegraded: [...base.allowDegraded, 'landlock'],
      });
      const pod = (r.objects[0] as Obj).spec.podTemplate.spec;
      expect(pod.runtimeClassName).toBe('gvisor');
      expect(pod.containers[0].command).toContain('off');
      expect(r.degradations.map((d) => d.control)).toContain('landlock');
      const kata = renderFromOpts({ ...base, preset: 'default', runtimeClass: 'kata-qemu' });
      expect((kata.objects[0] as Obj).spec.podTemplate.spec.runtimeClassName).toBe('kata-qemu');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to render with a degraded control not accepted, naming the flag', () => {
    let err: unknown;
    try {
      renderFromOpts({ ...base, preset: 'default', allowDegraded: ['pids'] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NanocellError);
    const line = (err as NanocellError).oneLine();
    expect(line).toContain('--allow-degraded rlimits');
    expect(line).not.toContain('--allow-degraded pids');
  });

  it('exec rules are the local ones: scratch places follow the workspace, noexec-tmp only when a place would be noexec', () => {
    const dir = fs.mkdtempSync('/var/tmp/nanocell-k8s-');
    try {
      const accepted = ALWAYS_DEGRADED.filter((c) => c !== 'noexec-tmp');
      const def = renderFromOpts({ ...base, preset: 'default', allowDegraded: accepted });
      const cmd = (def.objects[0] as Obj).spec.podTemplate.spec.containers[0].command as string[];
      const execs = cmd.flatMap((a, i) => (a === '--ll-exec' ? [cmd[i + 1]] : []));
      expect(execs).toEqual(['/dev/shm', '/home/cell', '/tmp', '/usr', '/workspace']);
      expect(def.degradations.map((d) => d.control)).not.toContain('noexec-tmp');
      const policy = path.join(dir, 'p.yaml');
      fs.writeFileSync(policy, 'exec: { allow: ["/usr/**"] }\n');
      expect(() =>
        renderFromOpts({ ...base, preset: 'default', policy, allowDegraded: accepted }),
      ).toThrow(/cannot enforce noexec-tmp/);
      const strict = renderFromOpts({ ...base, preset: 'default', policy });
      const c2 = (strict.objects[0] as Obj).spec.podTemplate.spec.containers[0].command;
      expect(c2.filter((a: string) => a === '--ll-exec')).toHaveLength(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad names, replicas and exec globs are one-line usage errors', () => {
    expect(() => renderFromOpts({ ...base, preset: 'default', shape: 'Bad_Name' })).toThrow(
      /not a valid Kubernetes name/,
    );
    expect(() => renderFromOpts({ ...base, preset: 'default', replicas: '-1' })).toThrow(
      /replicas/,
    );
    expect(() => renderFromOpts({ ...base, preset: 'nope' })).toThrow(/unknown preset/);
    expect(() => renderFromOpts({ ...base, preset: 'default', image: undefined })).toThrow(
      /--image/,
    );
  });

  it('every policy field has a row in the mapping table', () => {
    const top = Object.keys(policySchema.shape);
    const mapped = POLICY_MAPPING.map((m) => m.field).join(' ');
    for (const k of top) expect(mapped, k).toContain(k);
    for (const m of POLICY_MAPPING)
      if (m.enforcement === 'degraded') expect(m.control, m.field).toBeTruthy();
  });
});
