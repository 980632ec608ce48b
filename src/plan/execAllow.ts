// Turns the policy's exec allowlist (paths and globs) into concrete paths for Landlock, which
// works on file hierarchies, not patterns.
import fs from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import { PolicyError } from '../util/errors.js';

const WORKSPACE_TOKEN = '$WORKSPACE';
const MAX_GLOB_SCAN = 200_000;

/** The dynamic loader must be executable for any dynamically linked program to start. */
function loaderPaths(): string[] {
  const out: string[] = [];
  for (const p of [
    '/lib64/ld-linux-x86-64.so.2',
    '/lib/ld-linux-aarch64.so.1',
    '/lib/ld-linux.so.2',
  ]) {
    try {
      out.push(fs.realpathSync(p));
    } catch {
      // not on this host
    }
  }
  return out;
}

export function resolveExecAllow(patterns: string[], workspace: string): string[] {
  const out = new Set<string>(loaderPaths());
  for (const raw of patterns) {
    // The whole workspace is one Landlock rule; taken literally, since a project path may
    // contain characters that are glob syntax.
    if (raw === WORKSPACE_TOKEN || raw === `${WORKSPACE_TOKEN}/**`) {
      out.add(workspace);
      continue;
    }
    const pattern = raw.replaceAll(WORKSPACE_TOKEN, workspace);
    if (!path.isAbsolute(pattern)) {
      throw new PolicyError(
        `invalid policy: exec.allow: "${raw}" must be an absolute path or glob`,
      );
    }
    const scan = picomatch.scan(pattern);
    if (!scan.isGlob) {
      if (!fs.existsSync(pattern)) {
        throw new PolicyError(
          `invalid policy: exec.allow: "${raw}" does not exist`,
          'remove the entry or fix the path',
        );
      }
      out.add(path.normalize(pattern));
      continue;
    }
    // "dir/**" covers the whole hierarchy: Landlock grants it in one rule.
    if (/^[^*?[\]{}!]+\/\*\*$/.test(pattern)) {
      const dir = pattern.slice(0, -3);
      if (!fs.existsSync(dir)) {
        throw new PolicyError(
          `invalid policy: exec.allow: "${raw}" matches nothing (${dir} does not exist)`,
        );
      }
      out.add(dir);
      continue;
    }
    const matches = expandGlob(scan.base || '/', pattern);
    if (matches.length === 0) {
      throw new PolicyError(
        `invalid policy: exec.allow: "${raw}" matches no file`,
        'remove the entry or fix the glob',
      );
    }
    for (const m of matches) out.add(m);
  }
  return [...out].sort();
}

function expandGlob(base: string, pattern: string): string[] {
  const isMatch = picomatch(pattern, { dot: true });
  const found: string[] = [];
  let scanned = 0;
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (++scanned > MAX_GLOB_SCAN) {
        throw new PolicyError(
          `invalid policy: exec.allow: "${pattern}" scans too many files`,
          'use a narrower glob',
        );
      }
      const p = path.join(dir, e.name);
      if (e.isFile() || e.isSymbolicLink()) {
        if (isMatch(p)) found.push(p);
      } else if (e.isDirectory()) {
        walk(p);
      }
    }
  };
  walk(base);
  return found;
}
