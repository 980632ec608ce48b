// A cell's metadata labels (CellOptions.labels): the caller's own names for a task (an agent
// run, a ticket, a user), recorded with the task in the audit store and matched by
// `nanocell tasks --label k=v`. Checked before anything starts, since they are written into
// the hash-chained task.created event and cannot be changed after.
import { NanocellError } from '../util/errors.js';

const MAX_LABELS = 32;
const MAX_KEY = 63;
const MAX_VALUE = 256;
/** Letters, digits and `._/-`, starting and ending with a letter or digit (Kubernetes-like). */
const KEY = /^[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9])?$/;
// No control characters: a value is shown on one line by `nanocell tasks`.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function bad(what: string, fix: string): NanocellError {
  return new NanocellError(`labels: ${what}`, fix, 'USAGE');
}

/** Validates labels; returns a sorted copy (one canonical form in the audit record). */
export function checkLabels(labels: unknown): Record<string, string> {
  if (labels === undefined) return {};
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels))
    throw bad('not an object of strings', 'pass labels as { key: "value" }');
  const entries = Object.entries(labels as Record<string, unknown>);
  if (entries.length > MAX_LABELS)
    throw bad(`${entries.length} labels, more than ${MAX_LABELS}`, 'keep the labels that matter');
  for (const [k, v] of entries) {
    if (k.length > MAX_KEY || !KEY.test(k))
      throw bad(
        `key ${JSON.stringify(k.slice(0, 80))} is not a label key`,
        `use up to ${MAX_KEY} letters, digits and ._/- starting and ending with a letter or digit`,
      );
    if (typeof v !== 'string')
      throw bad(`${k}: the value is not a string`, 'pass every label value as a string');
    if (v.length > MAX_VALUE || CONTROL.test(v))
      throw bad(
        `${k}: the value is ${v.length > MAX_VALUE ? `longer than ${MAX_VALUE} characters` : 'not one line (control characters)'}`,
        `use a value of up to ${MAX_VALUE} characters on one line`,
      );
  }
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as Record<
    string,
    string
  >;
}

/** `k=v` (the CLI's --label) as a label pair, checked like a cell's labels. */
export function parseLabelFilter(text: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0) throw bad(`${JSON.stringify(text)} is not k=v`, 'write --label key=value');
  const [[k, v]] = Object.entries(checkLabels({ [text.slice(0, at)]: text.slice(at + 1) })) as [
    [string, string],
  ];
  return [k, v];
}
