// The one way nanocell runs git on the host. Everything git could be told to run by a
// configuration file it did not write is switched off: no system or global config, no hooks, no
// pager, no fsmonitor, no external diff or textconv, no credential helper, no prompts, no
// optional locks (read-only commands must not write the index), no replace refs. Commands that
// read a repository the cell wrote use a git dir nanocell made (gitHistory.ts), so the cell's
// .git/config is never read at all.
import { runCommand, runCommandSync, type RunOptions, type RunResult } from '../util/run.js';
import { NanocellError } from '../util/errors.js';

/** Settings given on the command line, which outrank every config file git reads. */
const SAFE_CONFIG: readonly string[] = [
  'core.hooksPath=/dev/null',
  'core.fsmonitor=false',
  'core.untrackedCache=false',
  'core.splitIndex=false',
  'core.pager=cat',
  'core.editor=false',
  'core.sshCommand=false',
  'core.askPass=',
  'credential.helper=',
  'diff.external=',
  'gc.auto=0',
  'maintenance.auto=false',
  'protocol.allow=never',
  'safe.directory=*',
  'log.showSignature=false',
  'log.mailmap=false',
  'gpg.program=false',
  'diff.renames=false',
  'core.quotePath=false',
];

export interface HostGitOptions {
  gitDir: string;
  workTree?: string;
  indexFile?: string;
  cwd?: string;
  input?: string | Buffer;
  /** check-ignore takes no pathspec magic, not even literal: it reads paths as given. */
  noPathspecMagic?: boolean;
  /** Upper bound on stdout (bytes); git is stopped past it. */
  maxBuffer?: number;
}

export interface HostGitResult {
  ok: boolean;
  exitCode: number;
  stdout: string;
  stderr: string;
}

function gitEnv(o: HostGitOptions): Record<string, string> {
  const env: Record<string, string> = {
    PATH: '/usr/bin:/bin',
    HOME: '/nonexistent',
    LC_ALL: 'C',
    GIT_DIR: o.gitDir,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_ATTR_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_OPTIONAL_LOCKS: '0',
    GIT_NO_REPLACE_OBJECTS: '1',
    GIT_LITERAL_PATHSPECS: '1',
    GIT_PAGER: 'cat',
    PAGER: 'cat',
    GIT_EXTERNAL_DIFF: '',
    GIT_ASKPASS: '',
    GIT_SSH_COMMAND: 'false',
  };
  if (o.noPathspecMagic) delete env.GIT_LITERAL_PATHSPECS;
  if (o.workTree) env.GIT_WORK_TREE = o.workTree;
  if (o.indexFile) env.GIT_INDEX_FILE = o.indexFile;
  return env;
}

function execOptions(o: HostGitOptions): RunOptions {
  return {
    env: gitEnv(o),
    cwd: o.cwd ?? '/',
    ...(o.input !== undefined ? { input: o.input } : {}),
    maxBuffer: o.maxBuffer ?? 64 * 1024 * 1024,
  };
}

function result(r: RunResult): HostGitResult {
  if (r.notFound) {
    throw new NanocellError(
      `cannot run git on the host: ${r.message}`,
      'install git (apt-get install git)',
      'HOST',
    );
  }
  const exitCode = r.exitCode ?? -1;
  return { ok: exitCode === 0, exitCode, stdout: r.stdout, stderr: r.stderr };
}

const argv = (args: string[]) => [...SAFE_CONFIG.flatMap((c) => ['-c', c]), '--no-pager', ...args];

/** Runs `git args` with a fixed environment (nothing of the caller's is passed on). */
export async function hostGit(args: string[], o: HostGitOptions): Promise<HostGitResult> {
  return result(await runCommand('git', argv(args), execOptions(o)));
}

/** The same, synchronously (the CLI's diff). */
export function hostGitSync(args: string[], o: HostGitOptions): HostGitResult {
  return result(runCommandSync('git', argv(args), execOptions(o)));
}
