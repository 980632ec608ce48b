// Build step: writes schema/policy.schema.json into the package.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { policyJsonSchema } from './jsonSchema.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
fs.mkdirSync(path.join(root, 'schema'), { recursive: true });
fs.writeFileSync(
  path.join(root, 'schema', 'policy.schema.json'),
  `${JSON.stringify(policyJsonSchema(), null, 2)}\n`,
);
