// Read-only host paths in real cells: a mounted dir is readable, read-only and noexec unless
// the mount says exec; a mount of ~/.ssh, a home, the state root, a socket or the workspace is
// refused before anything is created or mounted.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Cell } from '../../../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { PolicyError } from '../../../src/util/errors.js';
import { makeSandbox, mountsUnder, nanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
let tool: string;
beforeEach(() => {
  sb = makeSandbox();
  tool = path.join(path.dirname(sb.project), 'tool');
  fs.mkdirSync(tool);
  fs.writeFileSync(path.join(tool, 'hello'), '#!/bin/sh\necho hello-from-tool\n', { mode: 0o755 });
});
afterEach(() => sb.cleanup());

describe('host mounts in a cell', () => {
  it('binds a dir read-only and noexec, at the same path by default', () => {
    const r = nanocell(
      [
        'run',
        '--quiet',
        '--workspace',
        sb.project,
        '--mount',
        tool,
        '--',
        'sh',
        '-c',
        `cat ${tool}/hello; ${tool}/hello; echo exec=$?; touch ${tool}/new 2>/dev/null; echo touch=$?`,
      ],
      { stateRoot: sb.stateRoot },
    );
    // The one refusal, the exec from the noexec mount, may be told as a denial note (when it
    // reaches the stream before the command's end); nothing else may be.
    const notes = r.stderr.split('\n').filter((l) => l.startsWith('nanocell:'));
    expect(notes.filter((l) => !/^nanocell: blocked exec \S+\/hello \(/.test(l))).toEqual([]);
    expect(r.stdout).toContain('echo hello-from-tool');
    expect(r.stdout).toContain('exec=126');
    expect(r.stdout).toContain('touch=1');
    expect(fs.existsSync(path.join(tool, 'new'))).toBe(false);
  });

  it('runs programs from a mount with exec: true at its cell path', () => {
    const policy = path.join(path.dirname(sb.project), 'policy.yaml');
    fs.writeFileSync(policy, `mounts:\n  - { host: ${tool}, cell: /opt/tool, exec: true }\n`);
    const r = nanocell(
      ['run', '--quiet', '--workspace', sb.project, '--policy', policy, '--', '/opt/tool/hello'],
      { stateRoot: sb.stateRoot },
    );
    expect(r.stderr).not.toMatch(/nanocell:/);
    expect(r.stdout.trim()).toBe('hello-from-tool');
  });
});

describe('host mounts refused before anything is mounted', () => {
  async function refused(mount: string): Promise<string> {
    const base = path.dirname(sb.project);
    let error: unknown;
    try {
      const cell = await Cell.create({
        policy: resolvePolicy(parsePolicy({ mounts: [mount] })),
        workspace: sb.project,
        stateRoot: sb.stateRoot,
      });
      await cell.destroy();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PolicyError);
    const stateEntries = fs.existsSync(sb.stateRoot) ? fs.readdirSync(sb.stateRoot) : [];
    expect(stateEntries).toEqual([]);
    expect(mountsUnder(base)).toEqual([]);
    return (error as Error).message;
  }

  it('refuses ~/.ssh', async () => {
    const ssh = path.join(os.homedir(), '.ssh');
    const made = !fs.existsSync(ssh);
    if (made) fs.mkdirSync(ssh, { mode: 0o700 });
    try {
      expect(await refused('~/.ssh')).toMatch(/mount ~\/\.ssh refused: is the secret path .*\.ssh/);
    } finally {
      if (made) fs.rmdirSync(ssh);
    }
  });

  it('refuses a home directory', async () => {
    expect(await refused(os.homedir())).toMatch(/is the home directory/);
  });

  it('refuses the state root', async () => {
    fs.mkdirSync(sb.stateRoot);
    expect(await refused(sb.stateRoot)).toMatch(/overlaps the nanocell state root/);
  });

  it('refuses the workspace', async () => {
    expect(await refused(sb.project)).toMatch(/overlaps the workspace/);
  });

  it('refuses a socket', async () => {
    const sock = path.join(path.dirname(sb.project), 'agent.sock');
    const srv = net.createServer();
    await new Promise<void>((resolve) => srv.listen(sock, resolve));
    try {
      expect(await refused(sock)).toMatch(/is a socket/);
    } finally {
      srv.close();
    }
  });
});
