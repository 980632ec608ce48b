import { describe, expect, it } from 'vitest';
import type { AuditEvent, AuditEventInput } from '../../../src/audit/events.js';
import { GENESIS_HASH } from '../../../src/audit/chain.js';
import type { TaskRow } from '../../../src/audit/store.js';
import { describeEvent, readResources, summarizeTask } from '../../../src/audit/summary.js';
import { controlSampleInputs, sampleInputs } from './samples.js';

const task: TaskRow = {
  id: 't1',
  session: 's',
  command: ['npm', 'test'],
  status: 'exited',
  endReason: 'exited',
  exitCode: 0,
  createdAt: 1000,
  endedAt: 3000,
  ownerPid: 1,
  ownerStartTime: null,
  workspace: '/p',
  report: {
    resources: { peakMemoryBytes: 1048576, peakPids: 12, cpuTimeMs: 800 },
    limits: { memory: 536870912 },
  },
  eventCount: 0,
  storedBytes: 0,
  droppedEvents: 7,
  droppedCounts: { 'syscall.denied': 7 },
  chainHead: GENESIS_HASH,
};

let seq = 0;
const stored = (e: AuditEventInput): AuditEvent =>
  ({ ...e, v: 1, taskId: 't1', session: 's', time: 1000 + seq, seq: seq++ }) as AuditEvent;

describe('summarizeTask', () => {
  const events = [
    ...sampleInputs,
    {
      type: 'exec',
      path: '/usr/bin/git',
      argv: ['git', 'status'],
      pid: 8,
      ppid: 1,
      unverified: true,
    },
    {
      type: 'syscall.denied',
      name: 'openat',
      nr: 257,
      arch: 'x86_64',
      pid: 9,
      exe: '/bin/cat',
      errno: 13,
    },
    {
      type: 'syscall.denied',
      name: 'execve',
      nr: 59,
      arch: 'x86_64',
      pid: 9,
      exe: '/bin/sh',
      errno: 13,
    },
    {
      type: 'net.denied',
      host: 'evil.example',
      port: 443,
      reason: 'not in allowlist',
      protocol: 'socks5',
    },
    {
      type: 'net.allowed',
      host: 'registry.npmjs.org',
      port: 443,
      reason: 'rule',
      protocol: 'http-connect',
      bytesUp: 5,
      bytesDown: 1000,
    },
    { type: 'fs.change', path: 'b', kind: 'added', size: 1 },
  ].map((e) => stored(e as AuditEventInput));
  const s = summarizeTask(task, events);

  it('groups what ran and what was denied, by kind', () => {
    expect(s.ran.total).toBe(2);
    expect(s.ran.commands).toEqual([
      { count: 2, item: { path: '/usr/bin/git', argv: ['git', 'status'] } },
    ]);
    expect(s.denied.network).toEqual([
      { count: 2, item: { host: 'evil.example', port: 443, reason: 'not in allowlist' } },
      {
        count: 1,
        item: {
          host: 'c2VjcmV0.exfil.example',
          port: 53,
          reason: 'DNS: c2vjcmv0.exfil.example is not in network.allow',
          rule: 'default-deny',
        },
      },
    ]);
    expect(s.denied.syscalls).toEqual([
      { count: 3, item: { name: 'mount', exe: '/usr/bin/bash', errno: 1 } },
    ]);
    expect(s.denied.files.map((d) => d.item.name)).toEqual(['openat']);
    expect(s.denied.exec.map((d) => d.item.name)).toEqual(['execve']);
  });

  it('adds up traffic, changes, limits and degradations', () => {
    expect(s.network).toEqual([
      { count: 2, item: { host: 'registry.npmjs.org', port: 443, bytesUp: 15, bytesDown: 3000 } },
    ]);
    expect(s.changed.counts).toEqual({ added: 1, modified: 1, deleted: 0, mode: 0, symlink: 0 });
    expect(s.changed.paths.map((p) => p.path)).toEqual(['src/a.ts', 'b']);
    expect(s.limits).toEqual([{ limit: 'oom', detail: 'memory 512 MiB' }]);
    expect(s.degraded).toEqual([{ control: 'cgroups', reason: 'no delegation' }]);
  });

  it('takes the duration from task.exited and resources from the report', () => {
    expect(s.durationMs).toBe(1200);
    expect(s.exit?.endReason).toBe('exited');
    expect(s.resources).toEqual({
      peakMemoryBytes: 1048576,
      peakPids: 12,
      cpuTimeMs: 800,
      limits: { memory: 536870912 },
    });
    expect(s.audit).toEqual({ stored: 0, dropped: 7, droppedByType: { 'syscall.denied': 7 } });
  });
});

describe('readResources', () => {
  it('reads top-level figures and degradations in either form', () => {
    expect(
      readResources({
        peakMemory: 5,
        pidsPeak: 2,
        cpuMs: 3,
        durationMs: 9,
        degraded: ['cgroups', { control: 'landlock', reason: 'old kernel' }],
      }),
    ).toEqual({
      peakMemoryBytes: 5,
      peakPids: 2,
      cpuTimeMs: 3,
      durationMs: 9,
      degradations: [
        { control: 'cgroups', reason: '' },
        { control: 'landlock', reason: 'old kernel' },
      ],
    });
  });

  it('ignores what is not a report', () => {
    expect(readResources(null)).toEqual({});
    expect(readResources([1])).toEqual({});
    expect(readResources({ peakPids: 'many' })).toEqual({});
  });
});

describe('describeEvent', () => {
  it('describes every event type on one line', () => {
    expect(controlSampleInputs.map((e) => describeEvent(stored(e)))).toEqual([
      'exec by uid 1000 pid 4242: sh -c ls',
      'api.test:443: allowed once by the user (uid 1000)',
      'network.allow replaced: api.test:443 -> api.test:443, registry.test',
      'ANTHROPIC_API_KEY sent to api.anthropic.com (POST /v1/messages -> 200)',
      'ANTHROPIC_API_KEY refused toward evil.example/collect: the secret is not bound to evil.example',
    ]);
    const lines = sampleInputs.map((e) => describeEvent(stored(e)));
    for (const l of lines) expect(l).not.toContain('\n');
    expect(lines).toEqual([
      'created: npm test in /p',
      'started (runc 1.1.5)',
      'ended: exited, exit 0 after 1.20s',
      'git status [/usr/bin/git] pid 7 ppid 1 (unverified)',
      'mount (nr 165, x86_64) by /usr/bin/bash pid 9 -> EPERM (×3)',
      'http-connect registry.npmjs.org:443 (104.16.0.1): allowed by rule [rule registry.npmjs.org], 10 B up 2.0 KiB down in 40ms',
      'socks5 evil.example:443: not in allowlist',
      'DNS A c2VjcmV0.exfil.example over udp: NXDOMAIN, c2vjcmv0.exfil.example is not in network.allow [rule default-deny]',
      'modified src/a.ts (120 B)',
      'oom: memory 512 MiB',
      'cgroups: no delegation',
    ]);
  });
});

describe('summarizeTask counts what really ran and what failed', () => {
  const exec = (pid: number, path: string, argv: string[]) =>
    stored({ type: 'exec', path, argv, pid, ppid: 1, unverified: true } as AuditEventInput);
  const events = [
    // A shell's PATH lookup: three tries with the same argv from one pid; one program.
    exec(7, '/usr/local/sbin/make', ['make', 'all']),
    exec(7, '/usr/local/bin/make', ['make', 'all']),
    exec(7, '/usr/bin/make', ['make', 'all']),
    // A program that execs another (different argv) from the same pid: two programs.
    exec(8, '/usr/bin/env', ['env', 'node', 'x.js']),
    exec(8, '/usr/bin/node', ['node', 'x.js']),
    stored({
      type: 'net.allowed',
      host: 'no-such.example.org',
      port: 443,
      reason: 'allowed',
      protocol: 'http-connect',
      error: 'getaddrinfo ENOTFOUND no-such.example.org',
    } as AuditEventInput),
  ];
  const s = summarizeTask(task, events);

  it('folds failed PATH lookups into the program that ran', () => {
    expect(s.ran.total).toBe(3);
    expect(s.ran.lookups).toBe(2);
    expect(s.ran.commands.map((c) => c.item.path).sort()).toEqual([
      '/usr/bin/env',
      '/usr/bin/make',
      '/usr/bin/node',
    ]);
  });

  it('lists allowed connections that failed with their error, apart from traffic', () => {
    expect(s.network).toEqual([]);
    expect(s.networkFailed).toEqual([
      {
        count: 1,
        item: {
          host: 'no-such.example.org',
          port: 443,
          error: 'getaddrinfo ENOTFOUND no-such.example.org',
        },
      },
    ]);
  });
});
