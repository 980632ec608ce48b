// Finds the user's own toolchain installs (policy `toolchains:`) in the places their version
// managers put them. Reads only: the plan (src/plan/toolchains.ts) turns what is found into
// read-only exec mounts, PATH entries and per-project caches, checked like any host mount.
import fs from 'node:fs';
import path from 'node:path';
import type { ToolchainName } from '../policy/schema.js';

export interface FoundToolchain {
  name: ToolchainName;
  /** The install's root dir (realpath), mounted read-only and executable. */
  root: string;
  /** Dirs under root that go on PATH, first wins. */
  bin: string[];
  /** Which layout matched: nvm, pyenv, rustup, ... */
  source: string;
  version: string;
}

/** One place a manager keeps installs: a dir of versions (`versions`) or one install (`one`). */
interface Layout {
  source: string;
  /** `~` is the user's home. */
  dir: string;
  kind: 'versions' | 'one';
  /** Path under an install that must exist for it to count. */
  probe: string;
  /** Under a version dir, where the install itself sits (fnm's `installation`). */
  sub?: string;
  /** A file naming the default version (nvm's alias, rustup's settings). */
  pick?: (home: string) => string | undefined;
}

const read = (p: string): string | undefined => {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
};

/** The version managers, per toolchain, in the order they are preferred. */
const LAYOUTS: Record<ToolchainName, Layout[]> = {
  node: [
    {
      source: 'nvm',
      dir: '~/.nvm/versions/node',
      kind: 'versions',
      probe: 'bin/node',
      pick: (h) => read(path.join(h, '.nvm/alias/default'))?.trim(),
    },
    {
      source: 'fnm',
      dir: '~/.local/share/fnm/node-versions',
      kind: 'versions',
      sub: 'installation',
      probe: 'bin/node',
    },
    { source: 'volta', dir: '~/.volta/tools/image/node', kind: 'versions', probe: 'bin/node' },
    { source: 'asdf', dir: '~/.asdf/installs/nodejs', kind: 'versions', probe: 'bin/node' },
    {
      source: 'mise',
      dir: '~/.local/share/mise/installs/node',
      kind: 'versions',
      probe: 'bin/node',
    },
    {
      source: '/usr/local/lib/nodejs',
      dir: '/usr/local/lib/nodejs',
      kind: 'versions',
      probe: 'bin/node',
    },
  ],
  python: [
    {
      source: 'pyenv',
      dir: '~/.pyenv/versions',
      kind: 'versions',
      probe: 'bin/python3',
      pick: (h) => read(path.join(h, '.pyenv/version'))?.split('\n')[0]?.trim(),
    },
    { source: 'asdf', dir: '~/.asdf/installs/python', kind: 'versions', probe: 'bin/python3' },
    {
      source: 'mise',
      dir: '~/.local/share/mise/installs/python',
      kind: 'versions',
      probe: 'bin/python3',
    },
  ],
  rust: [
    {
      source: 'rustup',
      dir: '~/.rustup/toolchains',
      kind: 'versions',
      probe: 'bin/cargo',
      pick: (h) =>
        /default_toolchain\s*=\s*"([^"]+)"/.exec(
          read(path.join(h, '.rustup/settings.toml')) ?? '',
        )?.[1],
    },
  ],
  go: [
    { source: '/usr/local/go', dir: '/usr/local/go', kind: 'one', probe: 'bin/go' },
    { source: '~/sdk', dir: '~/sdk', kind: 'versions', probe: 'bin/go' },
    {
      source: 'asdf',
      dir: '~/.asdf/installs/golang',
      kind: 'versions',
      sub: 'go',
      probe: 'bin/go',
    },
    { source: 'mise', dir: '~/.local/share/mise/installs/go', kind: 'versions', probe: 'bin/go' },
  ],
  java: [
    { source: 'sdkman', dir: '~/.sdkman/candidates/java/current', kind: 'one', probe: 'bin/java' },
    { source: 'asdf', dir: '~/.asdf/installs/java', kind: 'versions', probe: 'bin/java' },
    {
      source: 'mise',
      dir: '~/.local/share/mise/installs/java',
      kind: 'versions',
      probe: 'bin/java',
    },
    { source: '/opt', dir: '/opt', kind: 'versions', probe: 'bin/javac' },
  ],
};

/** Version-aware order: v20.10.0 after v20.9.0, 3.12 after 3.9. */
const byVersion = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

function isDir(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
}

function installIn(l: Layout, home: string): { root: string; version: string } | undefined {
  const dir = l.dir.startsWith('~/') ? path.join(home, l.dir.slice(2)) : l.dir;
  const ok = (root: string) => fs.existsSync(path.join(root, l.probe));
  if (l.kind === 'one') {
    if (!ok(dir)) return undefined;
    const real = fs.realpathSync(dir);
    return { root: real, version: path.basename(real) };
  }
  if (!isDir(dir)) return undefined;
  const versions = fs
    .readdirSync(dir)
    .filter((v) => !v.startsWith('.') && ok(path.join(dir, v, l.sub ?? '')))
    .sort(byVersion);
  const wanted = l.pick?.(home);
  // nvm's alias may say "20" or "v20.1.0"; the newest match wins, else the newest install.
  const chosen =
    (wanted &&
      versions
        .filter((v) => v === wanted || v.replace(/^v/, '').startsWith(wanted.replace(/^v/, '')))
        .pop()) ||
    versions.pop();
  if (!chosen) return undefined;
  return { root: fs.realpathSync(path.join(dir, chosen, l.sub ?? '')), version: chosen };
}

/** The first layout that holds an install, per requested toolchain; missing ones are absent. */
export function findToolchains(
  names: readonly ToolchainName[],
  home: string,
): { found: FoundToolchain[]; missing: ToolchainName[] } {
  const found: FoundToolchain[] = [];
  const missing: ToolchainName[] = [];
  for (const name of names) {
    let hit: FoundToolchain | undefined;
    for (const l of LAYOUTS[name]) {
      const i = installIn(l, home);
      if (i) {
        hit = {
          name,
          root: i.root,
          bin: [path.join(i.root, 'bin')],
          source: l.source,
          version: i.version,
        };
        break;
      }
    }
    if (hit) found.push(hit);
    else missing.push(name);
  }
  return { found, missing };
}

/** Where each toolchain's managers are looked for, for doctor and the refusal's fix. */
export function toolchainPlaces(name: ToolchainName): string[] {
  return LAYOUTS[name].map((l) => `${l.source} (${l.dir})`);
}
