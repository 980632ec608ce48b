// Task ids: 10 chars of time (ms, Crockford base32, so ids sort by creation time) and 6 random
// chars (30 bits), lowercase. Short enough to type, unique across processes in practice.
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
export const TASK_ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{16}$/;
export const TASK_ID_PREFIX_PATTERN = /^[0-9a-hjkmnp-tv-z]{1,16}$/;

export function newTaskId(now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  const rnd = randomBytes(4).readUInt32BE(0);
  let tail = '';
  for (let i = 0; i < 6; i++) tail += ALPHABET[(rnd >>> (i * 5)) & 31]!;
  return time + tail;
}
