// Shapes shipped with nanocell: named policy layers that `k8s render --preset` puts under the
// user's policy file. Each is a policy file's content, so it is checked by the same schema.
import type { PolicyFile } from '../policy/schema.js';
import { NanocellError } from '../util/errors.js';

export const PRESETS: Readonly<Record<string, PolicyFile>> = {
  /** The local defaults: no network, 1 GiB, 1 CPU. */
  default: {},
  /** A Node.js project that installs from the public npm registry. */
  node: {
    limits: { memory: 2 * 1024 ** 3, cpus: 2 },
    network: { allow: ['registry.npmjs.org'] },
  },
  /** Small and offline: linters, formatters, unit tests. */
  small: {
    limits: { memory: 512 * 1024 ** 2, cpus: 0.5, disk: 256 * 1024 ** 2, timeout: 5 * 60_000 },
  },
};

export function presetLayer(name: string): PolicyFile {
  const p = Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined;
  if (!p) {
    throw new NanocellError(
      `unknown preset ${JSON.stringify(name)}`,
      `use one of ${Object.keys(PRESETS).join(', ')}`,
      'USAGE',
    );
  }
  return p;
}
