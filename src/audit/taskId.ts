// Task ids: 10 chars of time (ms, Crockford base32, so ids sort by creation time) and 8 random
// chars (40 bits), lowercase. Unique across processes in practice; the CLI takes any unique
// prefix, so they are short enough to type.
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
export const TASK_ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{18}$/;
export const TASK_ID_PREFIX_PATTERN = /^[0-9a-hjkmnp-tv-z]{1,18}$/;

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
