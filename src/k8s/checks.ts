// The sandbox pod's security properties as a named list of checks, run on every rendered pod
// spec before it is printed (the way libcontainer validates a spec before acting). A failure
// is a renderer bug, never something the user can cause. Also used by tests and the doctor.
import { NanocellError } from '../util/errors.js';

type Obj = Record<string, unknown>;
type Check = { name: string; ok: (pod: Obj, c: Obj) => boolean };

const sc = (c: Obj) => (c.securityContext ?? {}) as Obj;
const psc = (pod: Obj) => (pod.securityContext ?? {}) as Obj;

const POD_SECURITY_CHECKS: readonly Check[] = [
  { name: 'no service-account token', ok: (p) => p.automountServiceAccountToken === false },
  { name: 'no service links', ok: (p) => p.enableServiceLinks === false },
  { name: 'no host namespaces', ok: (p) => !p.hostNetwork && !p.hostPID && !p.hostIPC },
  { name: 'own user namespace', ok: (p) => p.hostUsers === false },
  {
    name: 'no cluster DNS (dnsPolicy None, loopback nameserver only)',
    ok: (p) => {
      const ns = ((p.dnsConfig ?? {}) as Obj).nameservers as string[] | undefined;
      return p.dnsPolicy === 'None' && !!ns && ns.length > 0 && ns.every((n) => n === '127.0.0.1');
    },
  },
  {
    name: 'non-root',
    ok: (p, c) =>
      sc(c).runAsNonRoot === true &&
      Number(sc(c).runAsUser ?? psc(p).runAsUser) > 0 &&
      psc(p).runAsNonRoot === true,
  },
  { name: 'not privileged', ok: (_p, c) => sc(c).privileged === false },
  { name: 'no privilege escalation', ok: (_p, c) => sc(c).allowPrivilegeEscalation === false },
  { name: 'read-only root', ok: (_p, c) => sc(c).readOnlyRootFilesystem === true },
  {
    name: 'no capabilities',
    ok: (_p, c) => {
      const caps = (sc(c).capabilities ?? {}) as Obj;
      return JSON.stringify(caps.drop) === '["ALL"]' && !caps.add;
    },
  },
  {
    name: 'Localhost seccomp profile',
    ok: (p) => ((psc(p).seccompProfile ?? {}) as Obj).type === 'Localhost',
  },
  {
    name: 'memory-backed, size-capped volumes only',
    ok: (p) =>
      ((p.volumes ?? []) as Obj[]).every((v) => {
        const e = v.emptyDir as Obj | undefined;
        return Object.keys(v).length === 2 && e?.medium === 'Memory' && !!e.sizeLimit;
      }),
  },
  {
    name: 'resource limits set',
    ok: (_p, c) => {
      const l = ((c.resources ?? {}) as Obj).limits as Obj | undefined;
      return !!l?.memory && !!l.cpu;
    },
  },
];

/** Names of the checks this pod spec fails; empty when it passes all. */
export function failedPodChecks(pod: Obj): string[] {
  const containers = (pod.containers ?? []) as Obj[];
  if (containers.length === 0) return ['has containers'];
  return POD_SECURITY_CHECKS.filter((k) => !containers.every((c) => k.ok(pod, c))).map(
    (k) => k.name,
  );
}

export function podSecurityChecks(pod: Obj): void {
  const failed = failedPodChecks(pod);
  if (failed.length) {
    throw new NanocellError(
      `rendered sandbox pod fails its security checks: ${failed.join(', ')}`,
      'report a bug',
      'INTERNAL',
    );
  }
}
