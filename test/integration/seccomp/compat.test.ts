// Ordinary agent work under the default profile: every workload must succeed and the monitor
// must record no denial at all (a denial here is a compatibility bug in the profile or plan).
import { describe, it } from 'vitest';
import type { CellEvent } from '../../../src/cell/types.js';
import { denials, execs, withCell } from './harness.js';

interface Outcome {
  exitCode: number;
  stdout: string;
  stderr: string;
  events: CellEvent[];
}

/** Runs one bash script in a fresh cell and returns its result with every event of the cell. */
async function runScript(
  script: string,
  files: Record<string, string> = { 'README.md': 'hello\n' },
  env: Record<string, string> = {},
): Promise<Outcome> {
  let events: CellEvent[] = [];
  const r = await withCell({ files }, async (c) => {
    events = c.events;
    return c.cell.run(['bash', '-euo', 'pipefail', '-c', script], { env });
  });
  // After destroy the monitor's stdout is fully read, so `events` is complete.
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, events };
}

const C_PROGRAM = {
  'src/greet.h': 'const char *greeting(void);\n',
  'src/greet.c': '#include "greet.h"\nconst char *greeting(void) { return "built in a cell"; }\n',
  'src/main.c':
    '#include <stdio.h>\n#include "greet.h"\nint main(void) { puts(greeting()); return 0; }\n',
  Makefile: [
    'CFLAGS = -O2 -Wall -Werror',
    'hello: build/main.o build/libgreet.a',
    '\t$(CC) -o $@ build/main.o -Lbuild -lgreet',
    'build/%.o: src/%.c src/greet.h | build',
    '\t$(CC) $(CFLAGS) -c -o $@ $<',
    'build/libgreet.a: build/greet.o',
    '\t$(AR) rcs $@ $^',
    'build:',
    '\tmkdir -p build',
    '',
  ].join('\n'),
};

const THREADS_C = `#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
static atomic_long total;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready;
static void *work(void *arg) {
  pthread_mutex_lock(&mu);
  while (!ready) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  for (long i = 0; i < 100000; i++) atomic_fetch_add(&total, (long)arg);
  return NULL;
}
int main(void) {
  pthread_t t[16];
  for (long i = 0; i < 16; i++) pthread_create(&t[i], NULL, work, (void *)1);
  pthread_mutex_lock(&mu); ready = 1; pthread_cond_broadcast(&cv); pthread_mutex_unlock(&mu);
  for (int i = 0; i < 16; i++) pthread_join(t[i], NULL);
  printf("total=%ld\\n", (long)total);
  return 0;
}
`;

describe.concurrent(
  'compatibility under the default profile (no denials)',
  { timeout: 240_000 },
  () => {
    it('bash pipelines and coreutils', async ({ expect }) => {
      const r = await runScript(
        [
          'seq 1 1000 | sort -rn | head -3 | paste -sd, -',
          'printf "b\\na\\nb\\n" | sort | uniq -c | awk \'{print $2"="$1}\' | tr "\\n" " "; echo',
          'mkdir -p d/e && cp README.md d/e/ && mv d/e d/f && ln -s f/README.md d/link',
          'readlink d/link; cat d/link | sed s/hello/HELLO/ | grep -c HELLO',
          'find d -type f | xargs -P2 -n1 sha256sum | cut -c1-8',
          'tar czf /tmp/d.tgz d && tar tzf /tmp/d.tgz | sort | tail -1',
          'chmod 600 d/f/README.md && stat -c %a d/f/README.md',
          'du -s d >/dev/null; df -P . >/dev/null; date -u +%Y >/dev/null; id -un; nproc >/dev/null',
          '(sleep 0.1; echo background) & wait',
          'timeout 5 cat /proc/self/status | grep -c NoNewPrivs',
          'rm -rf d && test ! -e d && echo removed',
        ].join('\n'),
      );
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(r.stdout.split('\n')).toEqual([
        '1000,999,998',
        'a=1 b=2 ',
        'f/README.md',
        '1',
        '5891b5b5',
        'd/link',
        '600',
        'cell',
        'background',
        '1',
        'removed',
        '',
      ]);
      expect(denials(r.events)).toEqual([]);
      expect(execs(r.events).length).toBeGreaterThan(15);
    });

    it('git init, commit, diff and log', async ({ expect }) => {
      const r = await runScript(
        [
          'git init -q -b main repo && cd repo',
          'printf "one\\n" > a.txt && git add a.txt && git commit -qm first',
          'printf "two\\n" >> a.txt && git diff --stat | tail -1',
          'git commit -qam second && git log --format=%s | paste -sd, -',
          'git diff HEAD~1 --name-only && git status --short | wc -l',
          'git gc -q && git fsck --no-progress && git log --oneline | wc -l',
        ].join('\n'),
        undefined,
        {
          GIT_AUTHOR_NAME: 'Cell',
          GIT_AUTHOR_EMAIL: 'cell@example.invalid',
          GIT_COMMITTER_NAME: 'Cell',
          GIT_COMMITTER_EMAIL: 'cell@example.invalid',
        },
      );
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe(' 1 file changed, 1 insertion(+)\nsecond,first\na.txt\n0\n2\n');
      expect(denials(r.events)).toEqual([]);
    });

    it('node with worker_threads, child processes and the interface list', async ({ expect }) => {
      const js = `
      const { Worker } = require('node:worker_threads');
      const os = require('node:os');
      const cp = require('node:child_process');
      const run = (n) => new Promise((res, rej) => {
        const w = new Worker('const { parentPort, workerData } = require("node:worker_threads");' +
          'let s = 0; for (let i = 0; i < 1e6; i++) s += i % workerData; parentPort.postMessage(s);',
          { eval: true, workerData: n });
        w.once('message', res); w.once('error', rej);
      });
      Promise.all([3, 5, 7, 11].map(run)).then((sums) => {
        console.log(sums.join(','));
        console.log(Object.keys(os.networkInterfaces()).join(','));
        console.log(cp.execFileSync('sh', ['-c', 'echo child']).toString().trim());
        require('node:fs').writeFileSync('out.json', JSON.stringify({ ok: true }));
        console.log(require('node:crypto').createHash('sha256').update('x').digest('hex').slice(0, 8));
      });`;
      const r = await runScript(`node -e '${js.replaceAll("'", "'\\''")}' && cat out.json`);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe('999999,2000000,2999997,4999995\nlo\nchild\n2d711642\n{"ok":true}');
      expect(denials(r.events)).toEqual([]);
    });

    it('npm install of a local tarball made by npm pack', async ({ expect }) => {
      const r = await runScript(
        [
          'cd tiny && npm pack --silent && cd ..',
          'mkdir app && cd app && npm init -y >/dev/null',
          'npm install ../tiny/tiny-1.2.3.tgz --offline --no-audit --no-fund --loglevel=error >/dev/null',
          'node -e \'console.log(require("tiny").answer())\'',
          'node -p \'require("./package.json").dependencies.tiny\'',
        ].join('\n'),
        {
          'tiny/package.json': JSON.stringify({ name: 'tiny', version: '1.2.3', main: 'index.js' }),
          'tiny/index.js': 'exports.answer = () => 42;\n',
        },
      );
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe('tiny-1.2.3.tgz\n42\nfile:../tiny/tiny-1.2.3.tgz\n');
      expect(denials(r.events)).toEqual([]);
    });

    it('python3 -m venv and the venv python', async ({ expect }) => {
      const r = await runScript(
        [
          'python3 -m venv venv',
          'venv/bin/python -c "import sys, sqlite3, ssl, json, threading; print(sys.prefix == sys.base_prefix)"',
          'venv/bin/pip --version | cut -d" " -f1',
          'venv/bin/python -c "import concurrent.futures as f; print(sum(f.ThreadPoolExecutor(4).map(abs, range(-5, 0))))"',
          'venv/bin/python -c "import multiprocessing as m; print(m.Pool(2).map(abs, [-1, -2]))"',
        ].join('\n'),
      );
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe('False\npip\n15\n[1, 2]\n');
      expect(denials(r.events)).toEqual([]);
    });

    it('gcc and make build a small C program in the workspace, and it runs', async ({ expect }) => {
      const r = await runScript('make -s && ./hello && make -s && echo up-to-date', C_PROGRAM);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe('built in a cell\nup-to-date\n');
      expect(denials(r.events)).toEqual([]);
      // cc1, as and ld ran as separate programs, each recorded.
      const paths = execs(r.events).map((e) => String(e.path));
      expect(paths.some((p) => p.endsWith('/cc1'))).toBe(true);
      expect(paths.some((p) => p.endsWith('/ld') || p.endsWith('/collect2'))).toBe(true);
    });

    it('sqlite3 CLI with WAL, a transaction and an index', async ({ expect }) => {
      const r = await runScript(
        [
          'sqlite3 db.sqlite "PRAGMA journal_mode=WAL;" >/dev/null',
          'sqlite3 db.sqlite "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT); CREATE INDEX tv ON t(v);"',
          'sqlite3 db.sqlite "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<1000) INSERT INTO t SELECT i, printf(\'%x\', i) FROM n; COMMIT;"',
          'sqlite3 db.sqlite "SELECT count(*), max(k) FROM t WHERE v LIKE \'1%\';"',
        ].join('\n'),
      );
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe('273|511\n');
      expect(denials(r.events)).toEqual([]);
    });

    it('a multi-threaded C program', async ({ expect }) => {
      const r = await runScript('gcc -O2 -pthread -o threads threads.c && ./threads', {
        'threads.c': THREADS_C,
      });
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe('total=1600000\n');
      expect(denials(r.events)).toEqual([]);
    });
  },
);
