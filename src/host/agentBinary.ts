// Where an agent preset's binary is on this host (stat and realpath only, nothing changed): the
// first of the preset's find entries that holds it. Under /usr the cell already sees it; in a
// user install dir it must resolve into one of the roots the entry names, which are what the
// cell will be shown (src/plan/agent.ts).
import fs from 'node:fs';
import path from 'node:path';
import type { AgentPreset } from '../policy/presets.js';

interface FoundAgent {
  /** The command as found on the host, e.g. ~/.npm-global/bin/claude expanded. */
  path: string;
  /** What it resolves to. */
  real: string;
  /** The entry's roots that exist, resolved; empty under /usr. */
  roots: string[];
}

export interface AgentSearch {
  found?: FoundAgent;
  /** Every bin dir looked in, in order (for the refusal). */
  looked: string[];
  /** Found but unusable: the command resolves outside its entry's roots. */
  outside?: { path: string; real: string };
}

const inside = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);
const underUsr = (p: string) => inside(p, '/usr');

function expand(p: string, home: string, base?: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return path.join(home, p.slice(2));
  return base ? path.resolve(base, p) : p;
}

function realOrUndefined(p: string): string | undefined {
  try {
    return fs.realpathSync(p);
  } catch {
    return undefined;
  }
}

function isExecutableFile(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

export function findAgentBinary(preset: AgentPreset, home: string): AgentSearch {
  const looked: string[] = [];
  let outside: AgentSearch['outside'];
  for (const entry of preset.find) {
    const bin = expand(entry.bin, home);
    looked.push(bin);
    const candidate = path.join(bin, preset.binary);
    const real = isExecutableFile(candidate) ? realOrUndefined(candidate) : undefined;
    if (!real) continue;
    if (underUsr(candidate) && underUsr(real))
      return { found: { path: candidate, real, roots: [] }, looked };
    const roots = (entry.roots ?? [])
      .map((r) => realOrUndefined(expand(r, home, bin)))
      .filter((r): r is string => r !== undefined);
    if (roots.some((r) => inside(real, r)))
      return { found: { path: candidate, real, roots }, looked };
    outside ??= { path: candidate, real };
  }
  return { looked, ...(outside ? { outside } : {}) };
}
