// Credentials in git's own configuration. A remote URL with a token in it
// (`https://user:ghp_…@github.com/…`) or an `http.extraHeader` carrying an Authorization header
// sits in .git/config, which the cell must see (git needs it) but must not read the secret from.
// The middle layer holds a redacted copy that shadows the project's file; the project's own file
// is never changed.
import {
  chmodSync,
  chownSync,
  lstatSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import { mkdirsLike, setModes } from './gitIndexView.js';
import type { Owner } from './overlay.js';

/** Git configuration files of the project's repository that the cell reads. */
const CANDIDATES = ['.git/config', '.git/config.worktree'];
const MAX_BYTES = 1024 * 1024;
const MAX_SUBMODULES = 1000;

/** `scheme://userinfo@`: a password, or a token given as the user name. */
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^/@\s"'\\]+)@/gi;
/** `extraHeader` (any section and subsection): custom headers are how CI puts tokens here. */
const EXTRA_HEADER = /^\s*extraheader\s*=.*$/i;

/** The redacted text and how many secrets it dropped. Pure. */
export function redactGitConfig(text: string): { text: string; redacted: number } {
  let redacted = 0;
  const lines = text.split('\n').map((line) => {
    if (EXTRA_HEADER.test(line)) {
      redacted++;
      return '\t# extraHeader removed by nanocell: it carried credentials';
    }
    return line.replace(USERINFO, (m, scheme: string, info: string) => {
      // Over HTTP a lone user name is often the token itself; elsewhere (ssh://git@) it is not.
      const http = /^https?:/i.test(scheme);
      if (!http && !info.includes(':')) return m;
      redacted++;
      return http ? scheme : `${scheme}${info.slice(0, info.indexOf(':'))}@`;
    });
  });
  return { text: lines.join('\n'), redacted };
}

/** The candidate files (project-relative) that hold credentials, with their redacted text. */
export function credentialConfigs(projectDir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const rel of [...CANDIDATES, ...submoduleConfigs(projectDir)]) {
    const abs = path.join(projectDir, rel);
    const st = lstatOrNone(abs);
    if (!st?.isFile()) continue;
    // Too large to redact is refused, never shown as it is: it may hold a token.
    if (st.size > MAX_BYTES) {
      throw new NanocellError(
        `${rel} is larger than 1 MiB, too large to show the cell without its credentials`,
        'shrink the repository configuration, or exclude .git from the workspace',
        'WORKSPACE',
      );
    }
    const r = redactGitConfig(readFileSync(abs, 'utf8'));
    if (r.redacted) out.set(rel, r.text);
  }
  return out;
}

/** A linked worktree's `.git` is a file: `.git/config` is then ENOTDIR, not an error. */
function lstatOrNone(abs: string): Stats | undefined {
  try {
    return lstatSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/**
 * Submodules keep their git dirs inside the project's (`.git/modules/<name>/config`, nested
 * for submodules of submodules); their remotes can carry tokens too. Bounded: a repository
 * with more than MAX_SUBMODULES is refused rather than shown unredacted.
 */
function submoduleConfigs(projectDir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string, depth: number): void => {
    const st = lstatOrNone(path.join(projectDir, rel));
    if (!st?.isDirectory() || depth > 8) return;
    for (const name of readdirSync(path.join(projectDir, rel))) {
      const sub = path.join(rel, name);
      if (!lstatOrNone(path.join(projectDir, sub))?.isDirectory()) continue;
      out.push(path.join(sub, 'config'));
      if (out.length > MAX_SUBMODULES) {
        throw new NanocellError(
          `.git/modules holds more than ${MAX_SUBMODULES} submodule repositories, too many to show the cell without their credentials`,
          'exclude .git from the workspace for this project',
          'WORKSPACE',
        );
      }
      walk(path.join(sub, 'modules'), depth + 1);
    }
  };
  walk('.git/modules', 0);
  return out;
}

/** Writes the redacted copies into the middle layer, with the project files' modes. */
export function writeGitConfigViews(
  layerDir: string,
  projectDir: string,
  views: Map<string, string>,
  owner: Owner,
): void {
  for (const [rel, text] of views) {
    const made = mkdirsLike(layerDir, projectDir, path.dirname(rel), owner);
    const dest = path.join(layerDir, rel);
    writeFileSync(dest, text, { mode: 0o600, flag: 'wx' });
    chownSync(dest, owner.uid, owner.gid);
    chmodSync(dest, lstatSync(path.join(projectDir, rel)).mode & 0o666);
    setModes(made);
  }
}

export function gitCredentialsNotice(views: Map<string, string>): string | undefined {
  if (!views.size) return undefined;
  return (
    `${[...views.keys()].join(' and ')} hold credentials (a token in a remote URL or an extraHeader): the cell sees a copy without them; ` +
    'to fix, keep tokens in a credential helper rather than in the repository configuration'
  );
}
