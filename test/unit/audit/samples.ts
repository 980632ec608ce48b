import type { AuditEventInput } from '../../../src/audit/events.js';

/** One valid input per event type. */
export const sampleInputs: AuditEventInput[] = [
  { type: 'task.created', command: ['npm', 'test'], policy: { memory: 512 }, workspace: '/p' },
  { type: 'task.started', runtime: 'runc 1.1.5' },
  { type: 'task.exited', exitCode: 0, endReason: 'exited', durationMs: 1200 },
  {
    type: 'exec',
    path: '/usr/bin/git',
    argv: ['git', 'status'],
    pid: 7,
    ppid: 1,
    unverified: true,
  },
  {
    type: 'syscall.denied',
    name: 'mount',
    nr: 165,
    arch: 'x86_64',
    pid: 9,
    exe: '/usr/bin/bash',
    errno: 1,
    count: 3,
  },
  {
    type: 'net.allowed',
    host: 'registry.npmjs.org',
    port: 443,
    ip: '104.16.0.1',
    rule: 'registry.npmjs.org',
    reason: 'allowed by rule',
    protocol: 'http-connect',
    bytesUp: 10,
    bytesDown: 2000,
    durationMs: 40,
  },
  {
    type: 'net.denied',
    host: 'evil.example',
    port: 443,
    reason: 'not in allowlist',
    protocol: 'socks5',
  },
  {
    type: 'dns.denied',
    name: 'c2VjcmV0.exfil.example',
    qtype: 'A',
    rule: 'default-deny',
    reason: 'c2vjcmv0.exfil.example is not in network.allow',
    transport: 'udp',
  },
  { type: 'fs.change', path: 'src/a.ts', kind: 'modified', size: 120 },
  { type: 'limit.hit', limit: 'oom', detail: 'memory 512 MiB' },
  { type: 'policy.degraded', control: 'cgroups', reason: 'no delegation' },
];

/**
 * Events of the live-cell verbs, the dashboard and the credential broker (apart, so the
 * recorded sample task stays).
 */
export const controlSampleInputs: AuditEventInput[] = [
  { type: 'control', verb: 'exec', uid: 1000, pid: 4242, argv: ['sh', '-c', 'ls'] },
  { type: 'net.decision', host: 'api.test', port: 443, decision: 'once', uid: 1000, pid: 4243 },
  { type: 'net.rules', before: ['api.test:443'], after: ['api.test:443', 'registry.test'] },
  {
    type: 'secret.used',
    name: 'ANTHROPIC_API_KEY',
    host: 'api.anthropic.com',
    method: 'POST',
    path: '/v1/messages',
    status: 200,
  },
  {
    type: 'secret.misuse',
    name: 'ANTHROPIC_API_KEY',
    host: 'evil.example',
    path: '/collect',
    reason: 'the secret is not bound to evil.example',
  },
];
