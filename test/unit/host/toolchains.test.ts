// Toolchain presets against fake homes laid out the way each version manager lays them out,
// and the masking scan on a tree like CPython's (public test keys, a CA bundle, a real secret).
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { probeHostPath } from '../../../src/host/hostPaths.js';
import { findToolchains, toolchainPlaces } from '../../../src/host/toolchains.js';
import { planToolchains } from '../../../src/plan/toolchains.js';

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'nanocell-toolchains-'));
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

/** A fake home with `files` (relative paths) created empty. */
function home(name: string, files: string[], extra: Record<string, string> = {}): string {
  const h = path.join(base, name);
  for (const f of [...files, ...Object.keys(extra)]) {
    fs.mkdirSync(path.dirname(path.join(h, f)), { recursive: true });
    fs.writeFileSync(path.join(h, f), extra[f] ?? '');
  }
  return h;
}

describe('findToolchains', () => {
  it('nvm: the default alias wins over a newer install; without one the newest (numeric order)', () => {
    const withAlias = home(
      'nvm1',
      ['.nvm/versions/node/v20.9.0/bin/node', '.nvm/versions/node/v20.10.0/bin/node'],
      { '.nvm/alias/default': '20.9\n' },
    );
    expect(findToolchains(['node'], withAlias).found[0]).toMatchObject({
      source: 'nvm',
      version: 'v20.9.0',
      root: fs.realpathSync(path.join(withAlias, '.nvm/versions/node/v20.9.0')),
    });
    const noAlias = home('nvm2', [
      '.nvm/versions/node/v20.9.0/bin/node',
      '.nvm/versions/node/v20.10.0/bin/node',
    ]);
    expect(findToolchains(['node'], noAlias).found[0]!.version).toBe('v20.10.0');
  });

  it('fnm keeps the install one level down; pyenv and rustup name their default', () => {
    const h = home(
      'mixed',
      [
        '.local/share/fnm/node-versions/v22.1.0/installation/bin/node',
        '.pyenv/versions/3.11.7/bin/python3',
        '.pyenv/versions/3.12.1/bin/python3',
        '.rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/cargo',
        '.rustup/toolchains/nightly-x86_64-unknown-linux-gnu/bin/cargo',
      ],
      {
        '.pyenv/version': '3.11.7\n',
        '.rustup/settings.toml': 'default_toolchain = "stable-x86_64-unknown-linux-gnu"\n',
      },
    );
    const { found, missing } = findToolchains(['node', 'python', 'rust', 'go'], h);
    expect(found.map((t) => [t.name, t.source, t.version])).toEqual([
      ['node', 'fnm', 'v22.1.0'],
      ['python', 'pyenv', '3.11.7'],
      ['rust', 'rustup', 'stable-x86_64-unknown-linux-gnu'],
    ]);
    expect(found[0]!.root.endsWith('/v22.1.0/installation')).toBe(true);
    expect(missing).toEqual(['go']);
  });

  it("SDKMAN's current is a symlink: the install's real path is what gets mounted", () => {
    const h = home('sdk', ['.sdkman/candidates/java/21.0.2-tem/bin/java']);
    fs.symlinkSync('21.0.2-tem', path.join(h, '.sdkman/candidates/java/current'));
    expect(findToolchains(['java'], h).found[0]).toMatchObject({
      source: 'sdkman',
      root: fs.realpathSync(path.join(h, '.sdkman/candidates/java/21.0.2-tem')),
    });
  });

  it('a dir without the probe binary is not an install', () => {
    const h = home('broken', ['.nvm/versions/node/v20.1.0/README.md']);
    expect(findToolchains(['node'], h)).toEqual({ found: [], missing: ['node'] });
  });
});

describe('planToolchains', () => {
  it('puts bins first on PATH, in policy order, with one cache per tool in HOME', () => {
    const plan = planToolchains(
      [
        { name: 'node', root: '/n', bin: ['/n/bin'], source: 'nvm', version: 'v1' },
        { name: 'go', root: '/g', bin: ['/g/bin'], source: '/usr/local/go', version: 'go' },
      ],
      [],
      toolchainPlaces,
    );
    expect(plan.env.PATH!.startsWith('/n/bin:/g/bin:/usr/local/sbin:')).toBe(true);
    expect(plan.env).toMatchObject({
      npm_config_cache: '/home/cell/.cache/nanocell/npm',
      GOMODCACHE: '/home/cell/.cache/nanocell/go-mod',
      GOCACHE: '/home/cell/.cache/nanocell/go-build',
    });
    expect(plan.caches.map((c) => c.name)).toEqual(['npm', 'go-mod', 'go-build']);
    expect(plan.mounts).toEqual([
      { host: '/n', exec: true, toolchain: true },
      { host: '/g', exec: true, toolchain: true },
    ]);
  });

  it('a missing toolchain is one error naming the places looked in and the fix', () => {
    expect(() => planToolchains([], ['rust'], toolchainPlaces)).toThrow(
      /toolchain rust not found \(looked in rustup \(~\/\.rustup\/toolchains\)\)/,
    );
  });

  it('refuses runsc, where masking inside the mounts is not verified', () => {
    const node = {
      name: 'node' as const,
      root: '/n',
      bin: ['/n/bin'],
      source: 'nvm',
      version: 'v1',
    };
    expect(() => planToolchains([node], [], toolchainPlaces, 'runsc')).toThrow(
      /toolchains: cannot be used with runsc/,
    );
    expect(planToolchains([node], [], toolchainPlaces, 'crun').mounts).toHaveLength(1);
  });

  it('no toolchains: no PATH override, no caches', () => {
    expect(planToolchains([], [], toolchainPlaces)).toMatchObject({
      env: {},
      caches: [],
      mounts: [],
    });
  });
});

describe('the masking scan of toolchain trees', () => {
  const tree = home('py', [
    'lib/python3.11/test/certdata/keycert.pem',
    'lib/python3.11/site-packages/certifi/cacert.pem',
    'lib/python3.11/site-packages/tool/.env',
  ]);

  it('without mask, the first secret-looking file refuses the mount', () => {
    expect(probeHostPath(tree).secretInside).toMatch(/\.pem$|\.env$/);
  });

  it('with mask, test keys and dropped secrets are listed to hide; CA bundles are kept', () => {
    const p = probeHostPath(tree, { mask: true });
    expect(p.secretInside).toBeUndefined();
    expect([...p.masked!].sort()).toEqual(
      [
        path.join(tree, 'lib/python3.11/site-packages/tool/.env'),
        path.join(tree, 'lib/python3.11/test/certdata/keycert.pem'),
      ].sort(),
    );
  });
});
