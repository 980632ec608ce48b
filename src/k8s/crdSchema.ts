// A CRD's openAPIV3Schema as a strict ajv validator. Kubernetes "structural" schemas prune
// unknown fields silently; nanocell wants a misspelt security field to be an error, so every
// object that lists its properties is closed unless it says x-kubernetes-preserve-unknown-
// fields. int-or-string becomes anyOf, the other x-kubernetes-* keywords are dropped (CEL
// rules cannot run here), and formats (int32, int64, date-time) are checked.
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

type Schema = Record<string, unknown>;

function strictSchema(s: Schema): Schema {
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith('x-kubernetes-')) continue;
    if (k === 'properties') {
      out[k] = Object.fromEntries(
        Object.entries(v as Record<string, Schema>).map(([n, c]) => [n, strictSchema(c)]),
      );
    } else if (k === 'items' || (k === 'additionalProperties' && typeof v === 'object')) {
      out[k] = strictSchema(v as Schema);
    } else if (k === 'allOf' || k === 'anyOf' || k === 'oneOf') {
      out[k] = (v as Schema[]).map(strictSchema);
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

/** One compiler for all CRDs: formats checked, defaults applied (as the API server does). */
export function crdCompiler(): (openAPIV3Schema: Schema) => ValidateFunction {
  const ajv = new Ajv({
    strictSchema: true,
    strictTypes: false,
    allErrors: true,
    useDefaults: true,
  });
  addFormats.default(ajv);
  return (schema) => ajv.compile(strictSchema(schema));
}

/** The v1beta1 schema of a CustomResourceDefinition object, if it serves v1beta1. */
export function servedSchema(crd: Schema, version: string): Schema | undefined {
  const versions = ((crd.spec as Schema | undefined)?.versions ?? []) as Schema[];
  const v = versions.find((x) => x.name === version && x.served === true);
  return (v?.schema as Schema | undefined)?.openAPIV3Schema as Schema | undefined;
}
