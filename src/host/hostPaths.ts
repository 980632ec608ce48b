// The probe behind the host-mount rules (src/plan/hostMounts.ts): what sits at each host path,
// where its symlinks lead, and whether a default-excluded secret lies inside it. Reads only.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import picomatch from 'picomatch';
import { DEFAULT_EXCLUDES } from '../policy/defaults.js';

/** Entries a mounted directory may hold before the secret scan gives up (and the mount is refused). */
const MAX_SCAN_ENTRIES = 200_000;

export interface ProbedPath {
  kind: 'dir' | 'file' | 'socket' | 'device' | 'fifo' | 'missing';
  real?: string;
  secretInside?: string;
  scanTruncated?: boolean;
}

/** The home of the user who ran nanocell: under sudo, the sudo caller's, not root's. */
export function invokingHome(): string {
  const sudoUser = process.getuid?.() === 0 ? process.env.SUDO_USER : undefined;
  if (sudoUser) {
    try {
      for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
        const f = line.split(':');
        if (f[0] === sudoUser && f[5]?.startsWith('/')) return f[5];
      }
    } catch {
      // fall back to this process's home
    }
  }
  return process.env.HOME && path.isAbsolute(process.env.HOME) ? process.env.HOME : os.homedir();
}

export function probeHostPath(p: string): ProbedPath {
  let real: string;
  try {
    real = fs.realpathSync(p);
  } catch {
    return { kind: 'missing' };
  }
  const st = fs.statSync(real);
  if (st.isSocket()) return { kind: 'socket', real };
  if (st.isBlockDevice() || st.isCharacterDevice()) return { kind: 'device', real };
  if (st.isFIFO()) return { kind: 'fifo', real };
  if (!st.isDirectory()) return { kind: 'file', real };
  return { kind: 'dir', real, ...scanForSecrets(real) };
}

/** Walks the directory (not following symlinks) for a name a default exclude matches. */
function scanForSecrets(root: string): { secretInside?: string; scanTruncated?: boolean } {
  const isSecret = picomatch([...DEFAULT_EXCLUDES], { dot: true });
  const stack = [root];
  let seen = 0;
  while (stack.length) {
    const dir = stack.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      continue; // unreadable here means unreadable to the cell too
    }
    for (const e of entries) {
      if (++seen > MAX_SCAN_ENTRIES) return { scanTruncated: true };
      const p = path.join(dir, e.name);
      if (isSecret(p.slice(1))) return { secretInside: p };
      if (e.isDirectory()) stack.push(p);
    }
  }
  return {};
}
