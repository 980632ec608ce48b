// The cell server's warm pools: a config file, validated in full; `nanocell run` tasks that fit
// a pool run in a claimed warm cell, the rest start cold, and both are recorded the same way.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadServeConfig } from '../../../src/server/poolConfig.js';
import { ServerPools } from '../../../src/server/pools.js';
import { CellServer } from '../../../src/server/server.js';
import { CLI, leftovers, makeSandbox, REPO, type Sandbox } from '../../helpers/cells.js';

function runCli(
  args: string[],
  stateRoot: string,
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: REPO, env: { ...process.env, NANOCELL_STATE_ROOT: stateRoot }, timeout: 120_000 },
      (e, stdout, stderr) =>
        resolve({
          status: child.exitCode ?? (e as { code?: number } | null)?.code ?? 0,
          stdout,
          stderr,
        }),
    );
    child.stdin!.end();
  });
}

let sb: Sandbox;
let server: CellServer | undefined;
let pools: ServerPools | undefined;
const log: string[] = [];
const configFile = () => path.join(path.dirname(sb.project), 'serve.yaml');

beforeEach(() => {
  sb = makeSandbox({ 'a.txt': 'from the project\n' });
  log.length = 0;
});
afterEach(async () => {
  await server?.close();
  await pools?.close();
  server = undefined;
  pools = undefined;
  sb.cleanup();
});

describe('nanocell serve --config (warm pools)', () => {
  it('runs a task that fits a pool in a warm cell, and one that does not cold', async () => {
    fs.writeFileSync(
      configFile(),
      `pools:\n  - name: web\n    workspace: project\n    size: 1\n    policy:\n      limits: { memory: 300m }\n`,
    );
    const configs = loadServeConfig(configFile());
    expect(configs[0]).toMatchObject({ name: 'web', workspace: sb.project, size: 1 });
    pools = new ServerPools();
    server = await CellServer.listen({
      stateRoot: sb.stateRoot,
      version: 'test',
      log: (m) => log.push(m),
      pools,
    });
    pools.start(configs, sb.stateRoot, (m) => log.push(m));
    await pools.whenFull();
    const run = (extra: string[]) =>
      runCli(
        [
          'run',
          '--quiet',
          ...extra,
          '--workspace',
          sb.project,
          '--',
          'sh',
          '-c',
          'cat a.txt; echo new > b.txt',
        ],
        sb.stateRoot,
      );

    const warm = await run(['--memory', '300m', '--verbose']);
    expect(warm).toMatchObject({ status: 0, stdout: 'from the project\n' });
    // --verbose says where the task ran, and in which cell.
    expect(warm.stderr).toMatch(/^nanocell: the task got warm cell \S+ of pool "web"$/m);
    expect(log.filter((l) => l.includes('run for pid'))).toEqual([
      expect.stringContaining('(warm pool "web")'),
    ]);
    // The pooled task is recorded like any other: its change set is there to review.
    const id = /change set (\S+)/.exec(warm.stderr)?.[1];
    expect((await runCli(['diff', id!], sb.stateRoot)).stdout).toContain('+new');

    // The default memory limit is another fixed part: no warm cell fits, so the task starts cold.
    const cold = await run(['--verbose']);
    expect(cold).toMatchObject({ status: 0, stdout: 'from the project\n' });
    expect(cold.stderr).toMatch(
      /^nanocell: the task's cell \S+ was started for it \(no warm pool fits/m,
    );
    expect(log.filter((l) => l.includes('run for pid')).at(-1)).not.toContain('warm pool');
    expect(log.filter((l) => l.includes('did not start'))).toEqual([]);
    expect(pools.stats()[0]).toMatchObject({
      name: 'web',
      claimed: 1,
      coldStarts: 0,
      failedStarts: 0,
    });

    await server.close();
    await pools.close();
    server = undefined;
    pools = undefined;
    expect(leftovers(sb.stateRoot)).toMatchObject({
      cells: [],
      mounts: [],
      slots: [],
      runtime: [],
    });
  });

  it('refuses a bad config file with one line naming the key, before anything starts', () => {
    const cases: [string, RegExp][] = [
      [
        'pools:\n  - name: web\n    workspace: project\n    size: 1\n    sise: 2\n',
        /pools\.0: unknown key "sise"/,
      ],
      ['pools:\n  - name: web\n    workspace: project\n    size: -1\n', /pools\.0\.size: /],
      [
        'pools:\n  - { name: a, workspace: project, size: 1 }\n  - { name: a, workspace: project, size: 1 }\n',
        /pools\.1\.name: "a" is used twice/,
      ],
      [
        'pools:\n  - name: web\n    workspace: project\n    size: 1\n    policy: { limits: { memry: 1 } }\n',
        /unknown key "memry"/,
      ],
      ['pools: [\n', /is not valid YAML or JSON/],
    ];
    for (const [text, want] of cases) {
      fs.writeFileSync(configFile(), text);
      expect(() => loadServeConfig(configFile())).toThrow(want);
    }
    // The CLI says the same in one line, and no server is left listening.
    const r = spawnSync(
      process.execPath,
      [CLI, '--state-root', sb.stateRoot, 'serve', '--foreground', '--config', configFile()],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/server config .*serve\.yaml: is not valid YAML or JSON/);
    expect(fs.existsSync(path.join(sb.stateRoot, 'nanocell.sock'))).toBe(false);
  });
});
