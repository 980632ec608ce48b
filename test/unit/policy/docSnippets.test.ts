// Every policy (and server config) a user can copy from the docs must load: each ```yaml block in README.md and
// docs/*.md goes through the same parsing, merging and network-rule compilation as a policy
// file given to `nanocell run --policy`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { compileNetRules } from '../../../src/net/rules.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { loadServeConfig } from '../../../src/server/poolConfig.js';

const REPO = path.resolve(import.meta.dirname, '../../..');

function yamlBlocks(file: string): { file: string; line: number; text: string }[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out: { file: string; line: number; text: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*```ya?ml\s*$/.test(lines[i]!)) continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && !/^\s*```\s*$/.test(lines[j]!)) j++;
    out.push({
      file: path.relative(REPO, file),
      line: start,
      text: lines.slice(start, j).join('\n'),
    });
    i = j;
  }
  return out;
}

const docs = [
  path.join(REPO, 'README.md'),
  ...fs
    .readdirSync(path.join(REPO, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => path.join(REPO, 'docs', f)),
];
const snippets = docs.flatMap(yamlBlocks);

describe('policy snippets in the docs', () => {
  it('finds the examples of README.md and docs/network.md', () => {
    const files = new Set(snippets.map((s) => s.file));
    expect(files).toContain('README.md');
    expect(files).toContain(path.join('docs', 'network.md'));
  });

  it.each(snippets.map((s) => [`${s.file}:${s.line}`, s] as const))('%s loads', (_where, s) => {
    const doc = YAML.parse(s.text) as Record<string, unknown> | null;
    if (doc && 'pools' in doc) {
      // A `nanocell serve --config` file: its pools' policies are checked by the same loader.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanocell-doc-'));
      try {
        fs.writeFileSync(path.join(dir, 'serve.yaml'), s.text);
        for (const pool of loadServeConfig(path.join(dir, 'serve.yaml')))
          expect(() => compileNetRules(pool.policy.network)).not.toThrow();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      return;
    }
    const policy = resolvePolicy(parsePolicy(doc, `${s.file}:${s.line}`));
    expect(() => compileNetRules(policy.network)).not.toThrow();
  });
});
