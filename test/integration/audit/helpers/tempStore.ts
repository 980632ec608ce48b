import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A fresh state root per test; `cleanup` removes it (call it from afterEach). */
export function tempStateRoot(): { root: string; dbPath: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'nanocell-audit-'));
  return {
    root,
    dbPath: join(root, 'nanocell.db'),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

const here = fileURLToPath(new URL('.', import.meta.url));

/** Starts helpers/writer.ts in its own node process. */
export function spawnWriter(
  dbPath: string,
  taskId: string,
  events: number,
  mode: 'end' | 'hang' | 'race',
) {
  return spawn(
    process.execPath,
    [
      '--import',
      join(here, 'registerTs.mjs'),
      join(here, 'writer.ts'),
      dbPath,
      taskId,
      String(events),
      mode,
    ],
    { stdio: [mode === 'race' ? 'pipe' : 'ignore', 'pipe', 'pipe'] },
  );
}
