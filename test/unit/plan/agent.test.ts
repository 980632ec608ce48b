// The cell side of an agent preset: where its binary is found on a real (temporary) host
// layout, what the cell is shown of it, its kept state dir and env, and the plan-time refusals.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findAgentBinary } from '../../../src/host/agentBinary.js';
import { planAgent } from '../../../src/plan/agent.js';
import { resolvePolicy, parsePolicy } from '../../../src/policy/load.js';

let home = '';
beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'nanocell-agent-unit-'));
});
afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

/** What `npm install -g --prefix ~/.npm-global PKG` leaves: a bin link into the package. */
function npmGlobal(pkg: string, bin: string, file: string) {
  const pkgDir = path.join(home, '.npm-global/lib/node_modules', pkg);
  fs.mkdirSync(path.join(pkgDir, path.dirname(file)), { recursive: true });
  fs.writeFileSync(path.join(pkgDir, file), '#!/bin/sh\n', { mode: 0o755 });
  fs.mkdirSync(path.join(home, '.npm-global/bin'), { recursive: true });
  fs.symlinkSync(
    path.join('../lib/node_modules', pkg, file),
    path.join(home, '.npm-global/bin', bin),
  );
  return pkgDir;
}

function plan(name: string, hostEnv: NodeJS.ProcessEnv, extra: object = {}) {
  const policy = resolvePolicy(parsePolicy({ preset: name, ...extra }));
  return planAgent({
    preset: policy.agent!,
    search: findAgentBinary(policy.agent!, home),
    home,
    hostEnv,
    secrets: policy.secrets,
  });
}

describe('agent presets on the host', () => {
  it('finds claude in ~/.npm-global: the package dir mounted, the bin linked into it', () => {
    const pkg = npmGlobal('@anthropic-ai/claude-code', 'claude', 'bin/claude.exe');
    const p = plan('claude', { ANTHROPIC_API_KEY: 'sk-ant-x' });
    const bin = path.join(home, '.npm-global/bin/claude');
    expect(p.binary).toBe(bin);
    expect(p.mounts).toEqual([{ host: pkg, exec: true, toolchain: true }]);
    expect(p.links).toEqual([[bin, path.join(pkg, 'bin/claude.exe')]]);
    expect(p.caches).toEqual([{ name: 'agent-claude', cell: '/home/cell/.claude', agent: true }]);
    expect(p.env.CLAUDE_CONFIG_DIR).toBe('/home/cell/.claude');
    expect(p.env.PATH!.split(':')[0]).toBe(path.dirname(bin));
    expect(p.secrets.map((s) => s.name)).toEqual(['ANTHROPIC_API_KEY']);
  });

  it("finds claude's native install: ~/.local/bin/claude links into ~/.local/share/claude", () => {
    const versions = path.join(home, '.local/share/claude/versions');
    fs.mkdirSync(versions, { recursive: true });
    fs.mkdirSync(path.join(home, '.local/bin'), { recursive: true });
    fs.writeFileSync(path.join(versions, '2.1.0'), '\x7fELF', { mode: 0o755 });
    const bin = path.join(home, '.local/bin/claude');
    fs.symlinkSync(path.join(versions, '2.1.0'), bin);
    const p = plan('claude', { ANTHROPIC_API_KEY: 'sk-ant-x' });
    expect(p.binary).toBe(bin);
    // Only the installer's own dir: not ~/.local, which holds keyrings and other tools.
    expect(p.mounts).toEqual([
      { host: path.join(home, '.local/share/claude'), exec: true, toolchain: true },
    ]);
    expect(p.links).toEqual([[bin, path.join(versions, '2.1.0')]]);
  });

  it('refuses a binary that is not there, naming where it looked and how to install it', () => {
    expect(() => plan('codex', { OPENAI_API_KEY: 'sk-x' })).toThrow(
      'agent codex: codex not found (looked in ~/.npm-global/bin, /usr/local/bin, /usr/bin)',
    );
    try {
      plan('codex', { OPENAI_API_KEY: 'sk-x' });
    } catch (e) {
      expect((e as { fix: string }).fix).toBe('install it with npm install -g @openai/codex');
    }
  });

  it('refuses a binary that resolves outside the install dirs the preset shows the cell', () => {
    fs.mkdirSync(path.join(home, '.npm-global/bin'), { recursive: true });
    fs.mkdirSync(path.join(home, 'elsewhere'));
    fs.writeFileSync(path.join(home, 'elsewhere/gemini'), '#!/bin/sh\n', { mode: 0o755 });
    fs.symlinkSync(path.join(home, 'elsewhere/gemini'), path.join(home, '.npm-global/bin/gemini'));
    expect(() => plan('gemini', { GEMINI_API_KEY: 'k' })).toThrow(
      'agent gemini: ~/.npm-global/bin/gemini resolves to ~/elsewhere/gemini, outside the install dirs the preset shows the cell',
    );
  });

  it('refuses at plan time when the key is not set on the host, naming the variable', () => {
    npmGlobal('@anthropic-ai/claude-code', 'claude', 'bin/claude.exe');
    expect(() => plan('claude', {})).toThrow(
      'agent claude: ANTHROPIC_API_KEY is not set on the host',
    );
    // A policy that gives the secret another source is not refused.
    const p = plan(
      'claude',
      {},
      {
        secrets: [
          { name: 'ANTHROPIC_API_KEY', from: { file: '/run/k' }, hosts: ['api.anthropic.com'] },
        ],
      },
    );
    expect(p.secrets.map((s) => s.from)).toEqual([{ file: '/run/k' }]);
  });

  it('keeps the optional secrets the host has (aider: either key), refuses when it has none', () => {
    const bin = path.join(home, '.local/bin');
    const venv = path.join(home, '.local/share/pipx/venvs/aider-chat');
    fs.mkdirSync(path.join(venv, 'bin'), { recursive: true });
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(venv, 'bin/aider'), '#!/bin/sh\n', { mode: 0o755 });
    fs.symlinkSync(path.join(venv, 'bin/aider'), path.join(bin, 'aider'));
    const p = plan('aider', { OPENAI_API_KEY: 'sk-x' });
    expect(p.secrets.map((s) => s.name)).toEqual(['OPENAI_API_KEY']);
    expect(p.mounts).toEqual([{ host: venv, exec: true, toolchain: true }]);
    expect(() => plan('aider', {})).toThrow(
      'agent aider: none of ANTHROPIC_API_KEY, OPENAI_API_KEY is set on the host',
    );
  });
});
