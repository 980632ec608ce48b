// Build step: writes schema/serve.schema.json (the cell server's config file) into the package.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveConfigJsonSchema } from './poolConfig.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
fs.mkdirSync(path.join(root, 'schema'), { recursive: true });
fs.writeFileSync(
  path.join(root, 'schema', 'serve.schema.json'),
  `${JSON.stringify(serveConfigJsonSchema(), null, 2)}\n`,
);
