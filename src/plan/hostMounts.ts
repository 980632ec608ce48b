// Read-only host paths in the cell (policy `mounts:`, `--mount`). Each one is checked here,
// once, before anything is mounted: a named list of rules over facts the host probe gathered
// (src/host/hostPaths.ts), so the whole decision is pure and unit-tested. The first rule a
// mount breaks refuses the cell with one line naming the path and the rule.
import path from 'node:path';
import picomatch from 'picomatch';
import type { ProbedPath as HostPathFacts } from '../host/hostPaths.js';
import { DEFAULT_EXCLUDES, type HostMountRequest } from '../policy/defaults.js';
import { HOME_SECRET_PATHS } from '../policy/homeSecretPaths.js';
import { PolicyError } from '../util/errors.js';
import { reservedOverlap } from './layout.js';
import type { OciMount } from './oci.js';

export interface HostMountContext {
  /** The invoking user's home, for `~`. */
  home: string;
  /** Every home directory of the host (passwd and $HOME). */
  homes: readonly string[];
  stateRoot: string;
  /** The project dir, the same path on the host and in the cell. */
  workspace: string;
}

/** A mount that passed every rule. */
export interface HostMount {
  /** Resolved host path (the bind source). */
  source: string;
  /** Absolute, normalised path in the cell. */
  cell: string;
  kind: 'dir' | 'file';
  exec: boolean;
  /** Cell paths of secret-looking files inside a toolchain mount, masked (linux.maskedPaths). */
  masked?: string[];
}

/** `~` and `~/x` are the invoking user's home; anything else must be absolute. */
export function expandMountPath(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return path.join(home, p.slice(2));
  return p;
}

const within = (inner: string, outer: string) =>
  inner === outer || outer === '/' || inner.startsWith(`${outer}/`);

const isDefaultExclude = picomatch([...DEFAULT_EXCLUDES], { dot: true });
const homeSecretMatchers = HOME_SECRET_PATHS.map((s) => ({
  s,
  isMatch: picomatch(s, { dot: true }),
}));

/** The path and every ancestor, for "is or is inside" rules. */
function selfAndAncestors(p: string): string[] {
  const out = [p];
  for (let d = path.dirname(p); d !== out[out.length - 1]; d = path.dirname(d)) out.push(d);
  return out;
}

type Rule = (real: string, f: HostPathFacts, c: HostMountContext) => string | undefined;

/** The rules, in order; each returns why the mount is refused, or undefined. */
const RULES: [name: string, rule: Rule][] = [
  [
    'no special files',
    (_r, f) =>
      f.kind === 'socket' || f.kind === 'device' || f.kind === 'fifo'
        ? `is a ${f.kind}, which would reach a host service or device`
        : undefined,
  ],
  [
    'no home directory',
    (real, _f, c) => {
      const h = c.homes.find((home) => within(home, real));
      return h ? `${h === real ? 'is' : 'contains'} the home directory ${h}` : undefined;
    },
  ],
  [
    'no credential store',
    (real, f) => {
      const hit = selfAndAncestors(real).find((p) => p !== '/' && isDefaultExclude(p.slice(1)));
      if (hit) return `${hit === real ? 'is' : 'is inside'} the secret path ${hit}`;
      if (f.secretInside) return `contains the secret path ${f.secretInside}`;
      if (f.scanTruncated)
        return 'holds too many files to check for secrets; mount a narrower directory';
      return undefined;
    },
  ],
  [
    'no home credential store',
    (real, _f, c) => {
      for (const home of c.homes) {
        if (!within(real, home)) continue;
        const rel = path.relative(home, real);
        for (const { s, isMatch } of homeSecretMatchers) {
          const parts = rel.split('/');
          const hit = parts.findIndex((_p, i) => isMatch(parts.slice(0, i + 1).join('/')));
          if (hit >= 0) return `is or is inside the credential store ${path.join(home, s)}`;
          if (within(path.join(home, s), real)) {
            return `contains the credential store ${path.join(home, s)}`;
          }
        }
      }
      return undefined;
    },
  ],
  [
    'no state root',
    (real, _f, c) =>
      within(real, c.stateRoot) || within(c.stateRoot, real)
        ? `overlaps the nanocell state root ${c.stateRoot}`
        : undefined,
  ],
  [
    'not the workspace',
    (real, _f, c) =>
      within(real, c.workspace) || within(c.workspace, real)
        ? `overlaps the workspace ${c.workspace}, which the cell already sees through its overlay`
        : undefined,
  ],
];

function refuse(given: string, why: string, fix: string): never {
  throw new PolicyError(`mount ${given} refused: ${why}`, fix);
}

/**
 * Checks every requested mount against the host facts and returns what to bind. Pure: `facts`
 * holds the probe's answer for each expanded host path.
 */
export function checkHostMounts(
  requests: readonly HostMountRequest[],
  ctx: HostMountContext,
  facts: ReadonlyMap<string, HostPathFacts>,
): HostMount[] {
  const out: HostMount[] = [];
  const fix = 'remove it from mounts / --mount, or mount only the directory the tool needs';
  for (const req of requests) {
    const given = req.host;
    const host = expandMountPath(given, ctx.home);
    if (!path.isAbsolute(host)) refuse(given, 'is not an absolute path or ~/...', fix);
    const f = facts.get(host);
    if (!f || f.kind === 'missing' || !f.real) refuse(given, `${host} does not exist`, fix);
    for (const [, rule] of RULES) {
      const why = rule(f.real, f, ctx);
      if (why) refuse(given, f.real === host ? why : `${f.real} ${why}`, fix);
    }
    const cell = path.normalize(req.cell ? expandMountPath(req.cell, ctx.home) : host);
    const cellFix = 'give the mount another cell path (HOST:CELL)';
    if (!path.isAbsolute(cell) || cell === '/') {
      refuse(given, `cell path ${cell} must be absolute and not /`, cellFix);
    }
    const reserved = reservedOverlap(cell);
    if (reserved) {
      refuse(given, `cell path ${cell} overlaps ${reserved}, which the cell reserves`, cellFix);
    }
    if (within(cell, ctx.workspace) || within(ctx.workspace, cell)) {
      refuse(given, `cell path ${cell} overlaps the workspace ${ctx.workspace}`, cellFix);
    }
    const clash = out.find((m) => within(cell, m.cell) || within(m.cell, cell));
    if (clash) refuse(given, `cell path ${cell} overlaps another mount at ${clash.cell}`, cellFix);
    const real = f.real;
    const masked = req.toolchain
      ? (f.masked ?? []).map((h) => path.join(cell, path.relative(real, h)))
      : [];
    out.push({
      source: f.real,
      cell,
      kind: f.kind as 'dir' | 'file',
      exec: req.exec,
      ...(masked.length ? { masked } : {}),
    });
  }
  return out;
}

/** The OCI bind mounts: read-only, nosuid, nodev, and noexec unless the mount allows exec. */
export function hostMountSpecs(mounts: readonly HostMount[]): OciMount[] {
  return mounts.map((m) => ({
    destination: m.cell,
    type: 'bind',
    source: m.source,
    options: [
      m.kind === 'dir' ? 'rbind' : 'bind',
      'ro',
      'nosuid',
      'nodev',
      ...(m.exec ? [] : ['noexec']),
    ],
  }));
}
