// What became of each change set: pending until it is applied or discarded, then a record of
// when and by whom. Kept outside the change set dir, which apply and discard remove. A change
// set applied in part (`apply --only`) keeps its dir; its record names the paths applied, and
// every later diff or apply leaves those out (pendingEntries).
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { applyPaths, stateRootOfChangeDir } from './applyPaths.js';
import type { Manifest } from './manifest.js';

const Fate = z.object({
  status: z.enum(['applied', 'partly applied', 'discarded']),
  at: z.string(),
  uid: z.number(),
  user: z.string(),
  /** For applied: the number of changes written. */
  applied: z.number().optional(),
  /** Set when an interrupted apply was finished by recovery rather than by the apply itself. */
  recovered: z.boolean().optional(),
  /** partly applied (and discarded after it): the entries' paths written so far. */
  paths: z.array(z.string()).optional(),
});
export type ChangeSetFate = z.infer<typeof Fate>;

export function whoAmI(): { uid: number; user: string } {
  const uid = process.getuid?.() ?? -1;
  let user = process.env.SUDO_USER ? `${process.env.SUDO_USER} (via sudo)` : '';
  if (!user) {
    try {
      user = os.userInfo().username;
    } catch {
      user = String(uid);
    }
  }
  return { uid, user };
}

const fateFile = (stateRoot: string, taskId: string) =>
  path.join(applyPaths(stateRoot).fates, `${path.basename(taskId)}.json`);

export function recordFate(
  stateRoot: string,
  taskId: string,
  fate: Omit<ChangeSetFate, 'at' | 'uid' | 'user'> & Partial<ChangeSetFate>,
): void {
  const dir = applyPaths(stateRoot).fates;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const full: ChangeSetFate = { at: new Date().toISOString(), ...whoAmI(), ...fate };
  const file = fateFile(stateRoot, taskId);
  writeFileSync(`${file}.tmp`, JSON.stringify(full), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

export function readFate(stateRoot: string, taskId: string): ChangeSetFate | undefined {
  try {
    return Fate.parse(JSON.parse(readFileSync(fateFile(stateRoot, taskId), 'utf8')));
  } catch {
    return undefined;
  }
}

/** One line for people: "applied 2026-12-02T19:50:00Z by alice (uid 1000)". */
export function describeFate(f: ChangeSetFate): string {
  const part =
    f.status === 'partly applied'
      ? ` (${f.paths?.length ?? 0} path(s))`
      : f.paths?.length
        ? ` (after ${f.paths.length} path(s) had been applied)`
        : '';
  return `${f.status}${part} ${f.at} by ${f.user} (uid ${f.uid})${f.recovered ? ', finished by recovery' : ''}`;
}

/** The paths a partly applied change set has written so far (empty for one still whole). */
export function appliedPaths(stateRoot: string, taskId: string): Set<string> {
  const f = readFate(stateRoot, taskId);
  return new Set(f?.status === 'partly applied' ? (f.paths ?? []) : []);
}

/** The change set without what `apply --only` already wrote, and what that was, sorted. */
export function pendingEntries(
  changeDir: string,
  m: Manifest,
): { manifest: Manifest; applied: string[] } {
  const done = appliedPaths(stateRootOfChangeDir(changeDir), m.taskId);
  if (!done.size) return { manifest: m, applied: [] };
  return {
    manifest: { ...m, entries: m.entries.filter((e) => !done.has(e.path)) },
    applied: [...done].sort(),
  };
}
