// Doctor output, shared by `doctor` and `doctor --backend k8s`.
import type { Check } from '../runtime/doctor.js';
import { colorEnabled, paint } from './format.js';

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
