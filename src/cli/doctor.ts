// `nanocell doctor`
import type { Command } from 'commander';
import { runDoctor } from '../runtime/doctor.js';
import type { RuntimeName } from '../policy/defaults.js';
import { colorEnabled, paint } from './format.js';
import { runtimeOption } from './runtimeOption.js';

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check what this host supports, what would be degraded, and how to fix it')
    .addOption(runtimeOption('OCI runtime to check').default('runc'))
    .option('--runtime-path <path>', 'path to the runtime binary')
    .option('--json', 'machine-readable output')
    .action((opts: { runtime: RuntimeName; runtimePath?: string; json?: boolean }) => {
      const checks = runDoctor({ runtime: opts.runtime, runtimePath: opts.runtimePath });
      if (opts.json) {
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
    });
}
