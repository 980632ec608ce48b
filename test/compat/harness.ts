// Runs a compatibility project's script on the host (as the unprivileged test user, with its
// own HOME and TMPDIR, like a cell's) and in a real cell (default policy plus the project's
// egress), and returns both outcomes with the cell's recorded denials.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { AuditEventInput } from '../../src/audit/events.js';
import { DenialSummaries, toAuditEvents } from '../../src/audit/sink.js';
import { Cell } from '../../src/cell/cell.js';
import { CGROUP_PARENT } from '../../src/host/probe.js';
import { CELL_PATH } from '../../src/plan/env.js';
import { parsePolicy, resolvePolicy } from '../../src/policy/load.js';
import { makeSandbox, TEST_ROOT } from '../helpers/cells.js';
import type { CompatProject } from './projects.js';

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

const HOST_USER = 'nanocell-ci';
const id = (flag: '-u' | '-g') =>
  Number(execFileSync('id', [flag, HOST_USER], { encoding: 'utf8' }));

/**
 * The script on the host, in a fresh copy of the project owned by the test user. `tmpfs` puts
 * the project, HOME and TMPDIR on a tmpfs, as a cell has them (its upper layer, HOME and /tmp
 * are tmpfs), so that a timing compares the cell with the host rather than tmpfs with a disk.
 * `cgroup` runs it in a cpu cgroup of its own beside the cells' (hostCgroup), for timings.
 */
export async function runOnHost(
  p: CompatProject,
  opts: { tmpfs?: boolean; cgroup?: boolean } = {},
) {
  fs.mkdirSync(TEST_ROOT, { recursive: true, mode: 0o755 });
  const base = fs.mkdtempSync(path.join(TEST_ROOT, `compat-${p.id}-`));
  fs.chmodSync(base, 0o755); // the test user must reach its dirs inside
  let mounted = false;
  let group: string | undefined;
  try {
    if (opts.tmpfs) {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4g,mode=755', 'tmpfs', base]);
      mounted = true;
    }
    const [project, home, tmp] = ['project', 'home', 'tmp'].map((d) => path.join(base, d));
    for (const [rel, body] of Object.entries(p.files)) {
      fs.mkdirSync(path.dirname(path.join(project!, rel)), { recursive: true });
      fs.writeFileSync(path.join(project!, rel), body);
    }
    fs.mkdirSync(home!);
    fs.mkdirSync(tmp!);
    execFileSync('chown', ['-R', `${HOST_USER}:${HOST_USER}`, project!, home!, tmp!]);
    const [uid, gid] = [id('-u'), id('-g')];
    group = opts.cgroup ? hostCgroup() : undefined;
    // In a cgroup: root joins it, then becomes the test user, so every process starts inside.
    const argv = group
      ? [
          'sh',
          '-c',
          `echo $$ > "$1" && exec setpriv --reuid=${uid} --regid=${gid} --clear-groups -- bash -c "$2"`,
          'sh',
          path.join(group, 'cgroup.procs'),
          p.script,
        ]
      : ['bash', '-c', p.script];
    return await spawnOutcome(argv, {
      cwd: project!,
      uid: group ? 0 : uid,
      gid: group ? 0 : gid,
      env: {
        PATH: CELL_PATH,
        HOME: home,
        TMPDIR: tmp,
        USER: HOST_USER,
        LOGNAME: HOST_USER,
        SHELL: '/bin/bash',
        ...(process.env.LANG ? { LANG: process.env.LANG } : {}),
      },
    });
  } finally {
    try {
      if (group) fs.rmdirSync(group);
    } catch {
      // A process of the script lingers (EBUSY): the next run joins the same group.
    }
    if (mounted) execFileSync('umount', ['-l', base]);
    fs.rmSync(base, { recursive: true, force: true });
  }
}

/**
 * A cpu cgroup for host runs beside the cells' (under CGROUP_PARENT, with the default weight a
 * cell has): the kernel schedules cgroups as groups, so a host run left in the root cgroup
 * competes with every other process on a loaded machine while a cell competes as one group,
 * which skews a timing either way by more than what the cell costs.
 */
function hostCgroup(): string {
  const v1 = '/sys/fs/cgroup/cpu';
  const base = fs.existsSync(path.join(v1, 'cgroup.procs')) ? v1 : '/sys/fs/cgroup';
  const dir = path.join(base, CGROUP_PARENT, `compat-host-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function spawnOutcome(
  argv: string[],
  o: { cwd: string; uid: number; gid: number; env: NodeJS.ProcessEnv },
): Promise<Outcome> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0]!, argv.slice(1), { ...o, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.once('error', reject);
    c.once('close', (code) =>
      resolve({ code: code ?? 128, stdout, stderr, ms: performance.now() - t }),
    );
  });
}

/** The script in a real cell under the default policy (plus the project's egress). */
export async function runInCell(p: CompatProject, policyOver: object = {}) {
  const sb = makeSandbox(p.files);
  const denials: AuditEventInput[] = [];
  const summaries = new DenialSummaries();
  let cell: Cell | undefined;
  try {
    cell = await Cell.create({
      policy: resolvePolicy(
        parsePolicy({ ...(p.network ? { network: p.network } : {}), ...policyOver }),
      ),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
      onEvent: (e) => {
        for (const a of toAuditEvents(e, summaries)) {
          if (a.type === 'syscall.denied' || a.type === 'net.denied') denials.push(a);
        }
      },
    });
    const t = performance.now();
    const r = await cell.run(['bash', '-c', p.script], { cwd: sb.project });
    const outcome: Outcome = {
      code: r.exitCode ?? 128,
      stdout: r.stdout,
      stderr: r.stderr,
      ms: performance.now() - t,
    };
    await cell.destroy();
    cell = undefined;
    return { ...outcome, denials };
  } finally {
    await cell?.destroy().catch(() => undefined);
    sb.cleanup();
  }
}

/** A denial as one line, for failure messages and docs/compatibility.md. */
export function denialLine(d: AuditEventInput): string {
  if (d.type === 'syscall.denied')
    return `${d.name} by ${d.exe}: ${d.detail ?? `errno ${d.errno}`}`;
  if (d.type === 'net.denied') return `egress ${d.host}:${d.port}: ${d.reason}`;
  return d.type;
}
