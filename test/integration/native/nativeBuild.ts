// Builds native/ once per test file (make is incremental; flock keeps parallel files apart).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const NATIVE_DIR = fileURLToPath(new URL('../../../native', import.meta.url));
export const BUILD_DIR = path.join(NATIVE_DIR, 'build');
export const INIT_BIN = path.join(BUILD_DIR, 'nanocell-init');
export const MONITOR_BIN = path.join(BUILD_DIR, 'nanocell-monitor');
export const IDMAP_BIN = path.join(BUILD_DIR, 'nanocell-idmap');

export function buildNative(): void {
  execFileSync('flock', ['/tmp/nanocell-native-build.lock', 'make', '-s', '-C', NATIVE_DIR], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}
