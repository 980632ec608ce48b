// A throwaway project and state root owned by the unprivileged test user, with the CLI run as
// that user: what the rootless tests share.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cliFor, TEST_ROOT } from './cells.js';

/** setup.sh creates this user; a machine without it fails the rootless tests, loudly. */
export const ROOTLESS_USER = 'nanocell-ci';

export interface RootlessSandbox {
  base: string;
  project: string;
  /** The CLI the user can read (cliFor). */
  cli: string;
  stateRoot: string;
  /** Runs the CLI as the user, in the project directory. */
  asUser(args: string[]): { status: number | null; stdout: string; stderr: string };
  /** Lets the user's gc clear what a failed test left, then removes everything. */
  cleanup(): void;
}

/** `files` are written into the project; `prepare` runs once the tree belongs to the user. */
export function makeRootlessSandbox(
  prefix: string,
  files: Record<string, string>,
  prepare: (project: string) => void = () => undefined,
): RootlessSandbox {
  execFileSync('id', [ROOTLESS_USER]);
  fs.mkdirSync(TEST_ROOT, { recursive: true, mode: 0o755 });
  const base = fs.mkdtempSync(path.join(TEST_ROOT, prefix));
  fs.chmodSync(base, 0o755);
  const project = path.join(base, 'project');
  const stateRoot = path.join(base, 'state');
  fs.mkdirSync(project);
  for (const [rel, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(project, rel)), { recursive: true });
    fs.writeFileSync(path.join(project, rel), body);
  }
  execFileSync('chown', ['-R', `${ROOTLESS_USER}:${ROOTLESS_USER}`, base]);
  prepare(project);
  const cli = cliFor(ROOTLESS_USER, base);
  const asUser = (args: string[]) => {
    const r = spawnSync(
      'runuser',
      ['-u', ROOTLESS_USER, '--', 'env', `NANOCELL_STATE_ROOT=${stateRoot}`, 'node', cli, ...args],
      { cwd: project, encoding: 'utf8', timeout: 120_000 },
    );
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  return {
    base,
    project,
    cli,
    stateRoot,
    asUser,
    cleanup() {
      asUser(['gc']);
      // Read-only dirs (a whiteout layer mirrors the project's modes) must open up to go.
      spawnSync('chmod', ['-R', 'u+rwX', base]);
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}
