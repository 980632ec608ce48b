// The JSON Schema of policy files, for editors. Generated from the zod schema, never by hand.
import { z } from 'zod';
import { policySchema } from './schema.js';

export function policyJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(policySchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://nanocell.dev/schema/policy.schema.json',
    title: 'nanocell policy',
  };
}
