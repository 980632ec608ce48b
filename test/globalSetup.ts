// Builds what the integration tests run: the native helpers and the compiled CLI.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  execFileSync('make', ['-s', '-C', path.join(root, 'native')], { stdio: 'inherit' });
  execFileSync('npx', ['tsc', '-p', path.join(root, 'tsconfig.build.json')], {
    stdio: 'inherit',
    cwd: root,
  });
}
