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
  /** With `mask`: the secret-looking files inside, to hide in the cell instead of refusing. */
  masked?: string[];
}

/**
 * Toolchain trees ship public test keys (CPython's test/certdata, Go's testdata) and CA bundles
 * (certifi, botocore): masking those keeps the toolchain working while a real secret dropped
 * into the tree is still hidden. CA bundles hold certificates only, never a private key.
 */
const PUBLIC_CA_BUNDLES = new Set(['cacert.pem', 'ca-bundle.crt', 'ca-certificates.crt']);
/** More masks than this means the tree is not a plain toolchain: mount a narrower one. */
const MAX_MASKS = 500;

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

export function probeHostPath(p: string, opts: { mask?: boolean } = {}): ProbedPath {
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
  return { kind: 'dir', real, ...scanForSecrets(real, opts.mask === true) };
}

/** Walks the directory (not following symlinks) for a name a default exclude matches. */
function scanForSecrets(
  root: string,
  mask: boolean,
): { secretInside?: string; scanTruncated?: boolean; masked?: string[] } {
  const isSecret = picomatch([...DEFAULT_EXCLUDES], { dot: true });
  const stack = [root];
  let seen = 0;
  const masked: string[] = [];
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
      if (isSecret(p.slice(1))) {
        if (!mask) return { secretInside: p };
        if (PUBLIC_CA_BUNDLES.has(e.name) && e.isFile()) continue;
        // A masked directory would be a tmpfs over it; a file is /dev/null. Either hides it.
        masked.push(p);
        if (masked.length > MAX_MASKS) return { scanTruncated: true };
        continue;
      }
      if (e.isDirectory()) stack.push(p);
    }
  }
  return mask ? { masked } : {};
}
