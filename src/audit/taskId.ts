// Task ids: 10 chars of time (ms, Crockford base32, so ids sort by creation time) and 8 random
// chars (40 bits), lowercase. Unique across processes in practice; the CLI takes any unique
// prefix, so they are short enough to type.
import { randomBytes } from 'node:crypto';
import { NanocellError } from '../util/errors.js';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
export const TASK_ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{18}$/;
const TASK_ID_PREFIX_PATTERN = /^[0-9a-hjkmnp-tv-z]{1,18}$/;

export function newTaskId(now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  let rnd = randomBytes(5).readUIntBE(0, 5);
  let tail = '';
  for (let i = 0; i < 8; i++) {
    tail += ALPHABET[rnd % 32]!;
    rnd = Math.floor(rnd / 32);
  }
  return time + tail;
}

/**
 * The one way a task id is resolved from what the user typed: the whole id or a unique prefix
 * (case-insensitive). `candidates` lists the known ids starting with a normalised prefix (a
 * few are enough to show an ambiguity). `what` names where the ids were looked for.
 */
export function resolveTaskIdPrefix(
  input: string,
  candidates: (prefix: string) => string[],
  what = 'in the audit trail',
): string {
  const p = input.trim().toLowerCase();
  const none = new NanocellError(
    `no task ${JSON.stringify(input)} ${what}`,
    'list recorded tasks with `nanocell tasks`',
    'USAGE',
  );
  if (!TASK_ID_PREFIX_PATTERN.test(p)) throw none;
  const ids = [...new Set(candidates(p))].filter((id) => id.startsWith(p)).sort();
  if (ids.includes(p)) return p;
  if (ids.length === 0) throw none;
  if (ids.length > 1) {
    throw new NanocellError(
      `task id prefix ${p} is ambiguous (${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''})`,
      'give more characters of the task id',
      'USAGE',
    );
  }
  return ids[0]!;
}
