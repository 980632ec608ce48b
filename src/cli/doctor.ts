// `nanocell doctor`
import type { Command } from 'commander';
import { runDoctor, type Check } from '../runtime/doctor.js';
import { addK8sDoctorOptions, runK8sDoctorCommand } from './k8s.js';
import type { RuntimeName } from '../policy/defaults.js';
import { colorEnabled, paint } from './format.js';

export function registerDoctorCommand(program: Command): void {
  addK8sDoctorOptions(program.command('doctor'))
    .description('check what this host supports, what would be degraded, and how to fix it')
    .option('--runtime <name>', 'OCI runtime to check (runc, crun, runsc)', 'runc')
    .option('--runtime-path <path>', 'path to the runtime binary')
    .option('--json', 'machine-readable output')
    .action(
      (opts: { runtime: RuntimeName; runtimePath?: string; json?: boolean; backend?: string }) => {
        if (opts.backend === 'k8s') return runK8sDoctorCommand(opts as never);
        const checks = runDoctor({ runtime: opts.runtime, runtimePath: opts.runtimePath });
        printChecks(checks, opts.json);
      },
    );
}

/** Prints doctor checks (table or JSON) and sets the exit code: 1 if any failed. */
export function printChecks(checks: Check[], json?: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(checks, null, 2)}\n`);
  } else {
    const p = paint(colorEnabled(process.stdout));
    const w = Math.max(...checks.map((c) => c.name.length));
    for (const c of checks) {
      const tag =
        c.status === 'ok'
          ? p.green('ok  ')
          : c.status === 'degraded'
            ? p.yellow('warn')
            : p.red('FAIL');
      process.stdout.write(
        `${tag}  ${c.name.padEnd(w)}  ${c.detail}${c.fix ? `\n      ${''.padEnd(w)}  fix: ${c.fix}` : ''}\n`,
      );
    }
  }
  process.exitCode = checks.some((c) => c.status === 'fail') ? 1 : 0;
}
