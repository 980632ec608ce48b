// The cell server checks every line before a handler sees it (src/server/requests.ts).
/* eslint-disable @typescript-eslint/no-explicit-any */
import { describe, expect, it } from 'vitest';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { parseLine } from '../../../src/server/requests.js';

const create = (policy: unknown) =>
  parseLine(JSON.stringify({ v: 2, id: 1, type: 'create', policy, workspace: '/tmp/p' }));

describe('cell server requests', () => {
  it('take any policy resolvePolicy makes, presets and secrets included', () => {
    const policies = [
      resolvePolicy(),
      resolvePolicy(
        parsePolicy({
          preset: 'claude',
          limits: { memory: '1g', timeout: '5m' },
          network: { allow: ['example.com'], hosts: { 'a.test': '10.0.0.1' } },
          mounts: ['/usr/share:/opt/share', { host: '/opt', exec: true }],
          secrets: [{ name: 'TOKEN', from: { env: 'TOKEN' }, hosts: ['api.example.com/v1'] }],
          env: { A: 'b' },
          denialNotes: false,
        }),
      ),
    ];
    for (const p of policies) {
      const r = create(JSON.parse(JSON.stringify(p)));
      expect(r).toMatchObject({ kind: 'request', msg: { type: 'create', policy: p } });
    }
  });

  it('refuse a policy with a wrong type or an unknown key, naming where', () => {
    const p = JSON.parse(JSON.stringify(resolvePolicy())) as Record<string, any>;
    p.limits.memory = 'lots';
    expect(create(p)).toMatchObject({
      kind: 'bad',
      id: 1,
      error: {
        message: expect.stringMatching(
          /^cell server protocol: bad create request at policy.limits.memory/,
        ),
      },
    });
    expect(create({ ...resolvePolicy(), sneaky: true })).toMatchObject({
      kind: 'bad',
      error: { message: expect.stringMatching(/bad create request at policy/) },
    });
  });

  it('tell requests, stream inputs and other versions apart', () => {
    expect(parseLine('{"v":2,"id":"a","type":"stdin","data":"aGk="}')).toMatchObject({
      kind: 'input',
      msg: { id: 'a', type: 'stdin', data: 'aGk=' },
    });
    expect(parseLine('{"v":2,"id":3,"type":"stdin","data":"not base64!"}')).toMatchObject({
      kind: 'bad',
      id: 3,
    });
    expect(parseLine('{"v":3,"id":4,"type":"hello"}')).toMatchObject({
      kind: 'bad',
      id: 4,
      fatal: true,
      error: { message: 'the client speaks protocol v3, this cell server speaks v2' },
    });
    expect(parseLine('[1]')).toMatchObject({ kind: 'bad', id: null });
    expect(parseLine('{"v":2,"id":-1,"type":"list"}')).toMatchObject({ kind: 'bad', id: null });
  });

  it("take the native front's runCli with an absolute cwd, and refuse anything else", () => {
    const runCli = (o: object) =>
      parseLine(JSON.stringify({ v: 2, id: 1, type: 'runCli', args: ['--', 'true'], ...o }));
    expect(runCli({ cwd: '/srv/p', env: { PATH: '/usr/bin' } })).toMatchObject({
      kind: 'request',
      msg: { type: 'runCli', args: ['--', 'true'], cwd: '/srv/p' },
    });
    expect(runCli({ cwd: 'p', env: {} })).toMatchObject({
      kind: 'bad',
      error: {
        message: expect.stringMatching(/bad runCli request at cwd: cwd must be an absolute path/),
      },
    });
    expect(runCli({ cwd: '/p', env: { A: 1 } })).toMatchObject({
      kind: 'bad',
      error: { message: expect.stringMatching(/at env\.A/) },
    });
    expect(runCli({ cwd: '/p', env: {}, shell: true })).toMatchObject({ kind: 'bad' });
  });
});
