// The exec rule of each writable place of a cell: the workspace and the scratch places (/tmp,
// HOME, /dev/shm). One fact decides both walls, so they cannot disagree: a place is mounted
// without noexec exactly when some exec.allow path reaches into it, and Landlock's execute
// right is granted only to the allowed paths. A noexec mount is what stops the dynamic loader
// (`ld.so ./bin`) and dlopen, since mmap(PROT_EXEC) of a file there fails; Landlock only sees
// execve. Pure: no file system.
import { PolicyError } from '../util/errors.js';
import { CELL_HOME, CELL_INIT } from './layout.js';
import type { CellPlan } from './plan.js';

/** How the scratch places follow the workspace (policy `exec.scratch`). */
export type ScratchExec = 'follow-workspace' | 'deny';

/** The cell's own scratch places: empty, private tmpfs mounts that go with the cell. */
const SCRATCH_PLACES = { tmp: '/tmp', home: CELL_HOME, shm: '/dev/shm' } as const;
export type ScratchPlace = keyof typeof SCRATCH_PLACES;

/** Whether each writable place is mounted executable. */
export interface ExecMounts {
  workspace: boolean;
  tmp: boolean;
  home: boolean;
  shm: boolean;
}

const within = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);

/** The scratch place a policy path lies in, if any. */
export function scratchPlaceOf(p: string): ScratchPlace | undefined {
  for (const [name, dir] of Object.entries(SCRATCH_PLACES)) {
    if (within(p, dir)) return name as ScratchPlace;
  }
  return undefined;
}

/**
 * A scratch place starts empty, so only the whole place can be named (Landlock opens each rule's
 * path when the cell starts). Returns the place's path for an entry such as `/tmp/**`.
 */
export function scratchEntry(raw: string, pattern: string): string {
  const norm = pattern.replace(/\/\*\*$/, '');
  const place = scratchPlaceOf(norm)!;
  if (norm !== SCRATCH_PLACES[place]) {
    throw new PolicyError(
      `invalid policy: exec.allow: "${raw}" names part of ${SCRATCH_PLACES[place]}, which starts empty in every cell`,
      `name the whole place ("${SCRATCH_PLACES[place]}/**") or a path in the workspace`,
    );
  }
  return norm;
}

/**
 * Completes the Landlock exec paths with the scratch places that follow the workspace, and
 * derives each place's mount rule from the result.
 */
export function planExecRule(
  allowed: readonly string[],
  workspace: string,
  scratch: ScratchExec,
): { paths: string[]; mounts: ExecMounts } {
  // Paths in the workspace name the workspace, even when it lies under /tmp.
  const named = new Set(
    allowed
      .filter((p) => !within(p, workspace))
      .map((p) => scratchPlaceOf(p))
      .filter((p) => p !== undefined),
  );
  if (scratch === 'deny' && named.size) {
    throw new PolicyError(
      `invalid policy: exec.scratch is "deny" but exec.allow names ${[...named].map((p) => SCRATCH_PLACES[p]).join(', ')}`,
      'drop one of the two',
    );
  }
  const paths = new Set(allowed);
  // A workspace under /tmp (mkdtemp) sits inside the scratch place: a Landlock rule on /tmp
  // would reach the whole workspace, so naming /tmp means allowing all of it.
  const home = scratchPlaceOf(workspace);
  const wholeWorkspace = allowed.some(
    (p) => within(workspace, p) && !(home && p === SCRATCH_PLACES[home]),
  );
  if (home && named.has(home) && !wholeWorkspace) {
    throw new PolicyError(
      `invalid policy: exec.allow names ${SCRATCH_PLACES[home]}, which holds the workspace ${workspace}, but not the whole workspace`,
      `allow the whole workspace too, or drop "${SCRATCH_PLACES[home]}/**"`,
    );
  }
  // The whole workspace executable (the default) makes the scratch places executable too:
  // test runners and build tools write what they run to $TMPDIR and HOME's caches.
  if (scratch === 'follow-workspace' && wholeWorkspace) {
    for (const dir of Object.values(SCRATCH_PLACES)) paths.add(dir);
  }
  const reaches = (dir: string) => [...paths].some((p) => within(p, dir) || within(dir, p));
  // A path in the workspace says nothing about the scratch place around it.
  const reachesScratch = (dir: string) =>
    [...paths].some((p) => !within(p, workspace) && (within(p, dir) || within(dir, p)));
  return {
    paths: [...paths].sort(),
    mounts: {
      workspace: reaches(workspace),
      tmp: reachesScratch(SCRATCH_PLACES.tmp),
      home: reachesScratch(SCRATCH_PLACES.home),
      shm: reachesScratch(SCRATCH_PLACES.shm),
    },
  };
}

/**
 * The monitor's exec guard judges execve and mmap(PROT_EXEC) against the same paths Landlock
 * enforces, so it can record what Landlock refuses silently; without Landlock (a degradation)
 * it gets none and only refuses memfds and noexec mounts, as the kernel does.
 */
export function execGuardArgs(plan: CellPlan, realpath: (p: string) => string): string[] {
  const args = plan.spec.process.args;
  // The runtime execs the cell's first process (init, or the shell that starts it) under the
  // filter before init applies Landlock; Landlock keeps the task from running init again.
  const out: string[] = [];
  if (!args.includes('--ll-exec')) return out;
  // The guard compares canonical paths: /bin/sh is /usr/bin/dash by the time it looks.
  for (const first of new Set([realpath(args[0]!), CELL_INIT])) out.push('--exec-allow', first);
  args.forEach((a, i) => {
    if (a === '--ll-exec' && args[i + 1]) out.push('--exec-allow', args[i + 1]!);
  });
  return out;
}

/**
 * Whether the monitor must see each mmap(PROT_EXEC) of a file (the exec guard's mapping check,
 * one round trip per library the loader maps, per exec). It matters in two cases:
 *   - a writable place is executable but the exec paths cover only part of it (an allowlist
 *     finer than its mount): the guard refuses mapping the rest, which the kernel allows;
 *   - a place code may sit in is noexec (the workspace or scratch places by the exec rule, a
 *     host path mounted without exec, a tool cache): the kernel refuses the mapping, and only
 *     the guard records why.
 * Otherwise (the default policy: workspace, /tmp, HOME and /dev/shm wholly executable) the kernel
 * allows every mapping the guard would, except from a memfd or /dev: pages any task can get as
 * anonymous executable memory anyway (docs/threat-model.md, R2). Pure.
 */
export function needsMapGuard(o: {
  rule: { paths: readonly string[]; mounts: ExecMounts };
  workspace: string;
  /** A host path mounted without exec, or a tool cache (always noexec), is in the cell. */
  noexecCodeDirs: boolean;
}): boolean {
  if (o.noexecCodeDirs) return true;
  const whole = (dir: string) => o.rule.paths.some((p) => within(dir, p));
  const places: [boolean, string][] = [
    [o.rule.mounts.workspace, o.workspace],
    [o.rule.mounts.tmp, SCRATCH_PLACES.tmp],
    [o.rule.mounts.home, SCRATCH_PLACES.home],
    [o.rule.mounts.shm, SCRATCH_PLACES.shm],
  ];
  return places.some(([exec, dir]) => !exec || !whole(dir));
}
