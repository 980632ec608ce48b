// The real projects of the compatibility suite: each is a set of files and one shell script that
// runs the project's own build and tests, the same on the host and in a cell. Shared by
// test/compat (same result required) and bench/compat.ts (wall time in a cell against the host).

export interface CompatProject {
  id: string;
  files: Record<string, string>;
  script: string;
  /** Egress the project needs in the cell (npm registry); none for the others. */
  network?: { allow: string[]; cidrs: string[] };
}

/**
 * CPython's own regression tests (Debian's libpython3.11-testsuite). A broad selection, trimmed
 * where a module spends its time sleeping (signal stress and itimer cases, the forkserver and
 * spawn variants of the multiprocessing command-line tests) so the suite takes minutes.
 */
export const CPYTHON_MODULES = [
  'test_os',
  'test_subprocess',
  'test_signal',
  'test_threading',
  'test_tempfile',
  'test_shutil',
  'test_select',
  'test_fcntl',
  'test_mmap',
  'test_posix',
  'test_pty',
  'test_resource',
  'test_pathlib',
  'test_tarfile',
  'test_zipfile',
  'test_socket',
  'test_asyncio.test_sock_lowlevel',
  'test_asyncio.test_streams',
  'test_asyncio.test_subprocess',
  'test_multiprocessing_main_handling',
];
const CPYTHON_IGNORE = [
  '*StressTest*',
  '*ItimerTest*',
  '*test_itimer*',
  '*SpawnCmdLineTest*',
  '*ForkServerCmdLineTest*',
];

const cpython: CompatProject = {
  id: 'cpython',
  files: { README: 'CPython regression tests\n' },
  script: [
    `/usr/bin/python3 -m test -j2 --timeout 600 ${CPYTHON_IGNORE.map((i) => `-i '${i}'`).join(' ')} \\`,
    `  ${CPYTHON_MODULES.join(' ')} 2>&1 | tail -n 40`,
  ].join('\n'),
};

const GIT_ENV =
  'export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t ' +
  "GIT_COMMITTER_EMAIL=t@example.invalid GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' " +
  "GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'";

/** git on a real repository; fixed dates make every hash the same on the host and in a cell. */
const git: CompatProject = {
  id: 'git',
  files: { README: 'git\n' },
  script: [
    'set -e',
    GIT_ENV,
    'git config --global init.defaultBranch main',
    'git init -q --bare origin.git',
    'git clone -q origin.git work 2>&1',
    'cd work',
    'for i in 1 2 3; do echo "line $i" > f$i.txt; git add f$i.txt; git commit -qm "c$i"; done',
    'git push -q origin main',
    'git checkout -qb feature HEAD~1',
    'echo feat > feat.txt && git add feat.txt && git commit -qm feat',
    'git rebase -q main',
    'git log --format="%H %s"',
    'git worktree add -q ../wt2 main 2>&1',
    '(cd ../wt2 && echo wt > wt.txt && git add wt.txt && git commit -qm wt && git log -1 --format=%H)',
    'git worktree list --porcelain | grep -c ^worktree',
    'git gc -q --aggressive --prune=now',
    'git count-objects -v | grep -E "^(count|packs)"',
    'git fsck --full --strict',
    'git clone -q --no-local ../origin.git ../clone2 && git -C ../clone2 log --oneline | wc -l',
    'echo git-ok',
  ].join('\n'),
};

/**
 * A Node project through npm: install a dependency from the registry (through the proxy in a
 * cell), reinstall it offline from the cache, build, test, and run a package's bin with npx
 * (unpacked into the npm cache in HOME, then executed from there).
 */
const npm: CompatProject = {
  id: 'npm',
  files: {
    'package.json': JSON.stringify(
      {
        name: 'compat-npm',
        version: '1.0.0',
        private: true,
        type: 'module',
        scripts: { build: 'node build.mjs', test: 'node --test' },
        dependencies: { 'is-number': '7.0.0' },
      },
      null,
      2,
    ),
    'build.mjs':
      "import fs from 'node:fs';\nfs.mkdirSync('dist', { recursive: true });\n" +
      "fs.writeFileSync('dist/sum.mjs', 'export const sum = (a, b) => a + b;\\n');\n",
    'test/sum.test.mjs':
      "import test from 'node:test';\nimport assert from 'node:assert';\n" +
      "import isNumber from 'is-number';\nimport { sum } from '../dist/sum.mjs';\n" +
      "test('sum', () => assert.strictEqual(sum(2, 3), 5));\n" +
      "test('dependency', () => assert.ok(isNumber(5) && !isNumber('x')));\n",
  },
  script: [
    'set -eo pipefail',
    // Their summaries print timings: only the status counts.
    'npm install --no-audit --no-fund --loglevel=error >/dev/null',
    'rm -rf node_modules && npm ci --offline --no-audit --no-fund --loglevel=error >/dev/null',
    'npm run -s build',
    'npm test 2>&1 | grep -E "^# (pass|fail)"',
    'npx --yes semver@7.6.0 -r ">=1.2.0" 1.2.3 1.1.0',
    'echo npm-ok',
  ].join('\n'),
  network: { allow: ['registry.npmjs.org'], cidrs: ['203.0.113.0/24'] },
};

/** `go test` and `go build` of a small module (the test binary is built under $TMPDIR). */
const go: CompatProject = {
  id: 'go',
  files: {
    'go.mod': 'module example.com/compat\n\ngo 1.19\n',
    'calc/calc.go': 'package calc\n\nfunc Add(a, b int) int { return a + b }\n',
    'calc/calc_test.go':
      'package calc\n\nimport (\n\t"os/exec"\n\t"testing"\n)\n\n' +
      'func TestAdd(t *testing.T) {\n\tif Add(2, 3) != 5 {\n\t\tt.Fatal("add")\n\t}\n}\n\n' +
      'func TestExec(t *testing.T) {\n\tout, err := exec.Command("sh", "-c", "echo hi").Output()\n' +
      '\tif err != nil || string(out) != "hi\\n" {\n\t\tt.Fatal(err)\n\t}\n}\n',
    'cmd/app/main.go':
      'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/compat/calc"\n)\n\n' +
      'func main() { fmt.Println("app", calc.Add(40, 2)) }\n',
  },
  script: [
    'set -eo pipefail',
    'export GOPROXY=off GOFLAGS=-mod=mod',
    'go vet ./...',
    'go test -count=1 ./... | sed "s/\\t[0-9.]*s$//"',
    'go build -o bin/app ./cmd/app && ./bin/app',
    'go run ./cmd/app',
  ].join('\n'),
};

/** gcc and make: objects, a static and a shared library, a program linked to both, its test. */
const c: CompatProject = {
  id: 'c',
  files: {
    Makefile: [
      'CFLAGS = -O2 -Wall -Werror -fPIC',
      'all: app',
      'libadd.a: add.o\n\tar rcs $@ $^',
      'libmul.so: mul.o\n\t$(CC) -shared -o $@ $^',
      "app: main.o libadd.a libmul.so\n\t$(CC) -o $@ main.o -L. -ladd -lmul -Wl,-rpath,'$$ORIGIN'",
      'test: app\n\t./app > out.txt && printf "5 6\\n" | cmp - out.txt && echo c-ok',
      'clean:\n\trm -f *.o *.a *.so app out.txt',
      '.PHONY: all test clean',
      '',
    ].join('\n'),
    'add.c': 'int add(int a, int b) { return a + b; }\n',
    'mul.c': 'int mul(int a, int b) { return a * b; }\n',
    'main.c':
      '#include <stdio.h>\nint add(int, int);\nint mul(int, int);\n' +
      'int main(void) { printf("%d %d\\n", add(2, 3), mul(2, 3)); return 0; }\n',
  },
  script: 'set -e\nmake -s -j2 test\nmake -s clean && make -s test',
};

export const COMPAT_PROJECTS: CompatProject[] = [cpython, git, npm, go, c];

export interface RegrtestResult {
  ok: string[];
  failed: string[];
  skipped: string[];
}

/** The module lists of regrtest's final summary. */
export function parseRegrtest(out: string): RegrtestResult {
  const block = (re: RegExp): string[] => {
    const m = re.exec(out);
    return m ? m[1]!.trim().split(/\s+/).filter(Boolean).sort() : [];
  };
  const failed = [
    ...block(/\d+ tests? failed:\n((?: {4}.*\n)+)/),
    ...block(/\d+ tests? failed again:\n((?: {4}.*\n)+)/),
  ];
  const skipped = block(/\d+ tests? skipped:\n((?: {4}.*\n)+)/);
  const all = /All (\d+) tests OK/.test(out) || /(\d+) tests? OK/.test(out);
  const ok = all ? CPYTHON_MODULES.filter((m) => !failed.includes(m) && !skipped.includes(m)) : [];
  return { ok, failed: [...new Set(failed)].sort(), skipped };
}
