// docs/kubernetes.md's mapping table is src/k8s/mapping.ts, row for row: the table between the
// `mapping:begin` and `mapping:end` markers is compared cell by cell with POLICY_MAPPING.
// NANOCELL_UPDATE_GOLDEN=1 rewrites it from the code (then run prettier on the file).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { POLICY_MAPPING, type FieldMapping } from '../../../src/k8s/mapping.js';
import { REPO } from '../../helpers/cells.js';

const DOC = path.join(REPO, 'docs', 'kubernetes.md');
const BEGIN = '<!-- mapping:begin (generated from src/k8s/mapping.ts; a test checks it) -->';
const END = '<!-- mapping:end -->';
const HEADER = ['policy field', 'Kubernetes object / component', 'enforcement', 'note'];

const code = (s: string) => (/^[a-zA-Z.]+$/.test(s) ? `\`${s}\`` : s);

function cells(m: FieldMapping): string[] {
  const enforcement =
    m.enforcement === 'degraded'
      ? `degraded: \`${m.control}\``
      : m.enforcement === 'not-applicable'
        ? 'not applicable'
        : m.enforcement;
  return [code(m.field), m.target, enforcement, m.note];
}

const row = (c: string[]) => `| ${c.join(' | ')} |`;

function section(text: string): string {
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  expect(a, 'docs/kubernetes.md has the mapping markers').toBeGreaterThanOrEqual(0);
  expect(b).toBeGreaterThan(a);
  return text.slice(a + BEGIN.length, b);
}

describe('docs/kubernetes.md mapping table', () => {
  it('is POLICY_MAPPING, row for row', () => {
    let text = fs.readFileSync(DOC, 'utf8');
    if (process.env.NANOCELL_UPDATE_GOLDEN === '1') {
      const table = [
        row(HEADER),
        row(HEADER.map(() => '---')),
        ...POLICY_MAPPING.map((m) => row(cells(m))),
      ];
      const a = text.indexOf(BEGIN);
      const b = text.indexOf(END);
      text = `${text.slice(0, a + BEGIN.length)}\n\n${table.join('\n')}\n\n${text.slice(b)}`;
      fs.writeFileSync(DOC, text);
    }
    const rows = section(text)
      .split('\n')
      .filter((l) => l.startsWith('|'))
      .map((l) =>
        l
          .slice(1, -1)
          .split('|')
          .map((c) => c.trim()),
      );
    expect(rows[0]).toEqual(HEADER);
    expect(rows.slice(2)).toEqual(POLICY_MAPPING.map(cells));
  });
});
