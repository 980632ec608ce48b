// Validators for rendered Kubernetes objects, from published schemas only:
// - the agent-sandbox CRDs' v1beta1 openAPIV3Schema (test/fixtures/agent-sandbox, pinned
//   upstream commit), compiled with ajv: formats checked, defaults applied, and every object
//   that lists its properties made closed, so an unknown field is an error (the API server
//   would prune it silently, which would hide a typo in a security setting);
// - Kubernetes' own OpenAPI schemas as the kubernetes-models package ships them (Pod,
//   NetworkPolicy, Deployment, Service, DaemonSet, ConfigMap), with unknown fields rejected by
//   the field lists of @kubernetes/client-node's generated models.
import fs from 'node:fs';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';
import { crdCompiler } from '../../src/k8s/crdSchema.js';
import YAML from 'yaml';
import * as k8s from '@kubernetes/client-node';
import { ConfigMap, Pod, Service } from 'kubernetes-models/v1';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { REPO } from './cells.js';

/**
 * The upstream CRDs, vendored unchanged in test/fixtures/agent-sandbox (Apache-2.0; its README
 * names the upstream commit): a clean clone needs nothing beside the repository.
 */
export function crdDir(): string {
  return path.join(REPO, 'test', 'fixtures', 'agent-sandbox', 'crds');
}

type Schema = Record<string, unknown>;

export interface CrdValidators {
  byKind: Map<string, ValidateFunction>;
  /** The CEL rules the schemas carry, which ajv cannot run (listed so a test can name them). */
  celRules: string[];
}

export function loadCrdValidators(): CrdValidators {
  const compile = crdCompiler();
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
    byKind.set(crd.spec.names.kind, compile(raw));
  }
  return { byKind, celRules };
}

type Attr = { baseName: string; type: string };
type ModelClass = { getAttributeTypeMap?: () => Attr[] };

/**
 * Fields no Kubernetes model knows, walked by the field lists @kubernetes/client-node generates
 * from the API's OpenAPI document (the API server would drop them, or reject them with strict
 * field validation). The kubernetes-models validators leave unknown fields alone.
 */
export function unknownBuiltinFields(value: unknown, type: string, at = ''): string[] {
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    return Array.isArray(value)
      ? value.flatMap((v, i) => unknownBuiltinFields(v, array[1]!, `${at}[${i}]`))
      : [];
  }
  const model = (k8s as unknown as Record<string, ModelClass>)[type];
  if (!model?.getAttributeTypeMap || !value || typeof value !== 'object') return [];
  const fields = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) =>
    fields.has(k) ? unknownBuiltinFields(v, fields.get(k)!, `${at}.${k}`) : [`${at}.${k}`],
  );
}

/** Kubernetes' own schema for a built-in kind; throws with the schema's errors or unknown fields. */
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
  const unknown = unknownBuiltinFields(obj, `V1${String(obj.kind)}`);
  if (unknown.length) throw new Error(`${String(obj.kind)}: unknown fields ${unknown.join(', ')}`);
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
