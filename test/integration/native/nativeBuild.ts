// Builds native/ once per test file (make is incremental; flock keeps parallel files apart).
// NANOCELL_NATIVE_SANITIZE=1 picks the ASan+UBSan variants of `make san` (native/build-san/)
// instead: CI runs the native tests once that way (scripts/setup.sh test).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const NATIVE_DIR = fileURLToPath(new URL('../../../native', import.meta.url));
export const SANITIZED = process.env.NANOCELL_NATIVE_SANITIZE === '1';
export const BUILD_DIR = path.join(NATIVE_DIR, SANITIZED ? 'build-san' : 'build');
export const INIT_BIN = path.join(BUILD_DIR, 'nanocell-init');
export const MONITOR_BIN = path.join(BUILD_DIR, 'nanocell-monitor');
export const IDMAP_BIN = path.join(BUILD_DIR, 'nanocell-idmap');
export const ATTACH_BIN = path.join(BUILD_DIR, 'nanocell-attach');

export function buildNative(): void {
  const target = SANITIZED ? ['san'] : [];
  execFileSync(
    'flock',
    ['/tmp/nanocell-native-build.lock', 'make', '-s', '-C', NATIVE_DIR, ...target],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
}
