// Include / exclude / protected glob matching. Patterns are relative to the project root,
// matched with picomatch (dot: true), and a pattern that names a directory covers everything
// below it, so `.aws` also hides `.aws/credentials`.
import picomatch from 'picomatch';
import { selfAndAncestors } from './paths.js';

export interface WorkspacePatterns {
  include: string[];
  exclude: string[];
  protected: string[];
}

export interface ScopeMatcher {
  /** The path or one of its ancestors matches an exclude pattern. */
  isExcluded(rel: string): boolean;
  /** The path or one of its ancestors matches a protected pattern. */
  isProtected(rel: string): boolean;
  /** The path or one of its ancestors matches an include pattern. */
  isIncluded(rel: string): boolean;
  /** A directory that is not included itself may still hold included paths. */
  mayHoldIncluded(relDir: string): boolean;
  /** Visible to the cell and writable back: included and not excluded. */
  inScope(rel: string): boolean;
}

/** Characters that are never glob syntax, in a path without `./`, `//` or a trailing `/`. */
const LITERAL = /^(?!\.\/)(?!.*\/\/)(?!.*\/$)[A-Za-z0-9._\-/]+$/;

/**
 * One matcher for a list of patterns: picomatch's regexes joined into a single RegExp, which
 * is several times faster than picomatch's per-pattern loop on a 100k-file walk. A pattern
 * that is `**` then `/NAME` (NAME without a slash or `**`) matches exactly the paths whose last
 * segment matches NAME, so it is tested against the basename alone: most default excludes
 * are of that form, and a short regex over a short name is much faster than the full-path one.
 */
export function matchAny(patterns: string[]): (rel: string) => boolean {
  return memo(matchers, patterns, () => buildMatchAny(patterns));
}

/**
 * Compiled matchers by their patterns, the one cache of them: every cold cell of a policy and
 * every claim of a warm pool compiles the same lists, and picomatch's compile of the default
 * excludes was milliseconds of each start (more than walking a small project). The matchers
 * are pure functions (no global regex state), so sharing one is safe.
 */
const matchers = new Map<string, (rel: string) => boolean>();
const scopes = new Map<string, ScopeMatcher>();
const MEMO_MAX = 64;

function memo<T>(table: Map<string, T>, key: unknown, make: () => T): T {
  const k = JSON.stringify(key);
  let v = table.get(k);
  if (v === undefined) {
    if (table.size >= MEMO_MAX) table.clear();
    v = make();
    table.set(k, v);
  }
  return v;
}

function buildMatchAny(patterns: string[]): (rel: string) => boolean {
  if (patterns.length === 0) return () => false;
  if (patterns.includes('**')) return () => true;
  const names: string[] = [];
  const paths: string[] = [];
  // Patterns without glob syntax (most protected paths) are plain path comparisons.
  const literals = new Set<string>();
  for (const p of patterns) {
    const name = p.startsWith('**/') ? p.slice(3) : undefined;
    if (name && !name.includes('/') && !name.includes('**')) names.push(name);
    else if (LITERAL.test(p)) literals.add(p);
    else paths.push(p);
  }
  const join = (ps: string[]) =>
    ps.length
      ? new RegExp(ps.map((p) => `(?:${picomatch.makeRe(p, { dot: true }).source})`).join('|'))
      : undefined;
  const nameRe = join(names);
  const pathRe = join(paths);
  return (rel) =>
    literals.has(rel) ||
    (nameRe !== undefined && nameRe.test(rel.slice(rel.lastIndexOf('/') + 1))) ||
    (pathRe !== undefined && pathRe.test(rel));
}

function compile(patterns: string[]): (rel: string) => boolean {
  const m = matchAny(patterns);
  return (rel) => selfAndAncestors(rel).some((p) => m(p));
}

/** Static directory prefixes of include patterns ('' means the pattern can match anywhere). */
function staticBases(patterns: string[]): string[] {
  return patterns.map((p) => {
    const s = picomatch.scan(p);
    if (!s.isGlob) return p.replace(/\/+$/, '');
    return s.base.replace(/\/+$/, '');
  });
}

/**
 * Code points that some file systems and tools drop from names (HFS+ ignores them, as git did
 * in CVE-2014-9390): zero-width and direction marks, joiners, the BOM.
 */
const IGNORABLE: ReadonlyArray<readonly [number, number]> = [
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x115f, 0x1160],
  [0x17b4, 0x17b5],
  [0x180b, 0x180f],
  [0x200b, 0x200f],
  [0x202a, 0x202e],
  [0x2060, 0x206f],
  [0x3164, 0x3164],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
  [0xffa0, 0xffa0],
];

function dropIgnorable(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (!IGNORABLE.some(([lo, hi]) => cp >= lo && cp <= hi)) out += ch;
  }
  return out;
}

/**
 * A path as a case-insensitive, normalising host may read it: NFC, ignorable code points
 * dropped, lower case, and trailing dots and spaces of each segment dropped (Windows file
 * systems ignore them). `.GIT/Hooks`, `.git\u200c/hooks` and `.git./hooks` all fold to
 * `.git/hooks`.
 */
export function foldPath(rel: string): string {
  // Plain ASCII (almost every path) has nothing to normalise or drop.
  const text = /^[\x20-\x7e]*$/.test(rel) ? rel : dropIgnorable(rel.normalize('NFC'));
  return text
    .toLowerCase()
    .split('/')
    .map((seg) => seg.replace(/[. ]+$/, '') || seg)
    .join('/');
}

export function compileScope(patterns: WorkspacePatterns): ScopeMatcher {
  return memo(scopes, patterns, () => buildScope(patterns));
}

function buildScope(patterns: WorkspacePatterns): ScopeMatcher {
  const excluded = compile(patterns.exclude);
  // A protected path is one a host program runs or reads later; the host may read the name
  // case-insensitively or normalised, so every spelling that folds to a protected one counts.
  const exact = compile(patterns.protected);
  const folded = compile(patterns.protected.map(foldPath));
  const protectedM = (rel: string) => exact(rel) || folded(foldPath(rel));
  const include = patterns.include.length ? patterns.include : ['**'];
  const included = compile(include);
  const bases = staticBases(include);
  return {
    isExcluded: excluded,
    isProtected: protectedM,
    isIncluded: included,
    mayHoldIncluded: (dir) =>
      bases.some(
        (b) => b === '' || b === dir || b.startsWith(`${dir}/`) || dir.startsWith(`${b}/`),
      ),
    inScope: (rel) => included(rel) && !excluded(rel),
  };
}
