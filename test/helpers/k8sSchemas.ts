// Validators for rendered Kubernetes objects, from published schemas only:
// - the agent-sandbox CRDs' v1beta1 openAPIV3Schema (shared/reference/agent-sandbox, pinned
//   upstream commit), compiled with ajv: formats checked, defaults applied, and every object
//   that lists its properties made closed, so an unknown field is an error (the API server
//   would prune it silently, which would hide a typo in a security setting);
// - Kubernetes' own OpenAPI schemas as the kubernetes-models package ships them (Pod,
//   NetworkPolicy, Deployment, Service, DaemonSet, ConfigMap).
import fs from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import YAML from 'yaml';
import { ConfigMap, Pod, Service } from 'kubernetes-models/v1';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { REPO } from './cells.js';

/** shared/reference/agent-sandbox/crds: beside the repo (CI, main) or in an ancestor dir. */
export function crdDir(): string {
  for (let d = path.dirname(REPO); ; d = path.dirname(d)) {
    const c = path.join(d, 'shared', 'reference', 'agent-sandbox', 'crds');
    if (fs.existsSync(c)) return c;
    if (d === path.dirname(d)) throw new Error('shared/reference/agent-sandbox/crds not found');
  }
}

type Schema = Record<string, unknown>;

/** Structural-schema keywords made plain JSON Schema, objects closed (see the header). */
function strictify(s: Schema): Schema {
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith('x-kubernetes-')) continue;
    if (k === 'properties') {
      out[k] = Object.fromEntries(
        Object.entries(v as Record<string, Schema>).map(([n, c]) => [n, strictify(c)]),
      );
    } else if (k === 'items' || (k === 'additionalProperties' && typeof v === 'object')) {
      out[k] = strictify(v as Schema);
    } else if (k === 'allOf' || k === 'anyOf' || k === 'oneOf') {
      out[k] = (v as Schema[]).map(strictify);
    } else {
      out[k] = v;
    }
  }
  if (s['x-kubernetes-int-or-string']) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  const open = s['x-kubernetes-preserve-unknown-fields'] === true;
  if (out.properties && out.additionalProperties === undefined && !open) {
    out.additionalProperties = false;
  }
  return out;
}

export interface CrdValidators {
  byKind: Map<string, ValidateFunction>;
  /** The CEL rules the schemas carry, which ajv cannot run (listed so a test can name them). */
  celRules: string[];
}

export function loadCrdValidators(): CrdValidators {
  const ajv = new Ajv({
    strictSchema: true,
    strictTypes: false,
    allErrors: true,
    useDefaults: true,
  });
  addFormats.default(ajv);
  const byKind = new Map<string, ValidateFunction>();
  const celRules: string[] = [];
  for (const f of fs.readdirSync(crdDir()).filter((n) => n.endsWith('.yaml'))) {
    const crd = YAML.parse(fs.readFileSync(path.join(crdDir(), f), 'utf8'));
    const v = crd.spec.versions.find((x: { name: string }) => x.name === 'v1beta1');
    const raw = v.schema.openAPIV3Schema as Schema;
    JSON.stringify(raw, (k, val) => {
      if (k === 'x-kubernetes-validations')
        celRules.push(...val.map((r: { rule: string }) => r.rule));
      return val;
    });
    byKind.set(crd.spec.names.kind, ajv.compile(strictify(raw)));
  }
  return { byKind, celRules };
}

/** Kubernetes' own schema for a built-in kind; throws with the schema's errors. */
export function validateBuiltin(obj: Record<string, unknown>): void {
  const models: Record<string, new (d: never) => { validate(): void }> = {
    NetworkPolicy,
    Deployment,
    Service,
    DaemonSet,
    ConfigMap,
    Pod,
  };
  const M = models[obj.kind as string];
  if (!M) throw new Error(`no Kubernetes schema for kind ${String(obj.kind)}`);
  new M(structuredClone(obj) as never).validate();
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** ObjectMeta as the API server checks it (the CRD schemas leave metadata open). */
export function metadataProblems(meta: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const name = String(meta.name ?? '');
  if (!name || name.length > 253 || !DNS_SUBDOMAIN.test(name)) problems.push(`name ${name}`);
  for (const [k, v] of Object.entries((meta.labels ?? {}) as Record<string, string>)) {
    const [prefix, n] = k.includes('/') ? k.split('/') : [undefined, k];
    if (prefix !== undefined && !DNS_SUBDOMAIN.test(prefix)) problems.push(`label key ${k}`);
    if (!n || n.length > 63 || !LABEL_VALUE.test(n)) problems.push(`label key ${k}`);
    if (v.length > 63 || !LABEL_VALUE.test(v)) problems.push(`label ${k}=${v}`);
  }
  return problems;
}
