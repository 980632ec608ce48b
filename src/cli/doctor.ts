// `nanocell doctor`
import type { Command } from 'commander';
import { runDoctor } from '../runtime/doctor.js';
import { printChecks } from './printChecks.js';
import { addK8sDoctorOptions, runK8sDoctorCommand } from './k8s.js';
import type { RuntimeName } from '../policy/defaults.js';
import { runtimeOption } from '../task/args/runtimeOption.js';

export function registerDoctorCommand(program: Command): void {
  addK8sDoctorOptions(program.command('doctor'))
    .description('check what this host supports, what would be degraded, and how to fix it')
    .addOption(runtimeOption('OCI runtime to check').default('runc'))
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
