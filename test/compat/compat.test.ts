// The compatibility suite: real projects' own builds and test suites run in a cell (default
// policy, real runtime, real registry through the proxy) and on the host in the same run, and
// must give the same result. A difference must be a documented entry of docs/compatibility.md
// and a recorded denial; this suite has none today.
import { describe, it } from 'vitest';
import { COMPAT_PROJECTS, CPYTHON_MODULES, parseRegrtest } from './projects.js';
import { denialLine, runInCell, runOnHost } from './harness.js';

const project = (id: string) => COMPAT_PROJECTS.find((p) => p.id === id)!;

/** Host and cell concurrently: the result, not the time, is what this suite compares. */
async function both(id: string) {
  const [host, cell] = await Promise.all([runOnHost(project(id)), runInCell(project(id))]);
  const why = cell.denials.map(denialLine).join('\n') || '(no denial recorded)';
  return { host, cell, why };
}

describe.concurrent('real toolchains in a cell as on the host', { timeout: 900_000 }, () => {
  it("CPython's regression tests: the same modules pass", async ({ expect }) => {
    const { host, cell, why } = await both('cpython');
    const h = parseRegrtest(host.stdout);
    const c = parseRegrtest(cell.stdout);
    // The selection ran on the host: a broken host is not a pass.
    expect(h.ok.length + h.failed.length + h.skipped.length, host.stdout).toBe(
      CPYTHON_MODULES.length,
    );
    expect(h.failed, host.stdout).toEqual([]);
    expect(c, `cell:\n${cell.stdout}\ndenials:\n${why}`).toEqual(h);
  });

  for (const id of ['git', 'npm', 'go', 'c']) {
    it(`${id}: the same output and status`, async ({ expect }) => {
      const { host, cell, why } = await both(id);
      expect(host.code, `host:\n${host.stdout}${host.stderr}`).toBe(0);
      expect(
        { code: cell.code, stdout: cell.stdout },
        `cell stderr:\n${cell.stderr}\ndenials:\n${why}`,
      ).toEqual({ code: host.code, stdout: host.stdout });
      expect(cell.stdout).toMatch(new RegExp(`${id}-ok|ok\\s+example.com|^app 42$`, 'm'));
      // Nothing the projects do needs a refusal under the default policy.
      expect(cell.denials.map(denialLine)).toEqual([]);
    });
  }
});
