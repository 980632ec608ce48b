// Agent presets: every shipped YAML file loads and says what it allows; `preset:` in a policy
// is the first layer and the policy extends it; bad names are one line with the fix.
import { describe, expect, it } from 'vitest';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { loadPreset, presetNames } from '../../../src/policy/presets.js';
import { PolicyError } from '../../../src/util/errors.js';

const EXPECTED = {
  aider: { allow: ['api.anthropic.com:443', 'api.openai.com:443'], dir: '.aider', inner: 'none' },
  claude: { allow: ['api.anthropic.com:443'], dir: '.claude', inner: 'off' },
  codex: { allow: ['api.openai.com:443'], dir: '.codex', inner: 'off' },
  gemini: { allow: ['generativelanguage.googleapis.com:443'], dir: '.gemini', inner: 'off' },
};

describe('shipped presets', () => {
  it('are claude, codex, gemini and aider', () => {
    expect(presetNames()).toEqual(['aider', 'claude', 'codex', 'gemini']);
  });

  it.each(Object.entries(EXPECTED))(
    '%s loads: its API only, each secret bound to an allowed host, IS_SANDBOX, its own dir',
    (name, want) => {
      const { preset, layer } = loadPreset(name);
      expect(preset.name).toBe(name);
      expect(layer.network?.allow).toEqual(want.allow);
      expect(layer.network?.cidrs ?? []).toEqual([]);
      expect(preset.config.dir).toBe(want.dir);
      expect(preset.innerSandbox.mode).toBe(want.inner);
      expect(layer.env?.IS_SANDBOX).toBe('1');
      expect(layer.secrets?.length).toBeGreaterThan(0);
      for (const s of layer.secrets ?? []) {
        expect(s.header).toBeTruthy();
        for (const h of s.hosts) expect(want.allow).toContain(`${h.split('/')[0]}:443`);
      }
      // A user install dir needs the dirs it resolves into; /usr is the cell's already.
      for (const f of preset.find) {
        if (!f.bin.startsWith('/usr/')) expect(f.roots?.length).toBeGreaterThan(0);
      }
    },
  );

  it('switch the inner sandbox off explicitly where the agent has one', () => {
    expect(loadPreset('claude').preset.args).toEqual([
      '--settings',
      '{"sandbox":{"enabled":false}}',
    ]);
    expect(loadPreset('codex').preset.args).toEqual(['-c', 'sandbox_mode="danger-full-access"']);
    expect(loadPreset('gemini').layer.env?.GEMINI_SANDBOX).toBe('false');
  });

  it('turn telemetry off through the agents own switches', () => {
    const env = loadPreset('claude').layer.env ?? {};
    expect(env).toMatchObject({
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    });
    expect(loadPreset('aider').layer.env?.AIDER_ANALYTICS_DISABLE).toBe('true');
    expect(loadPreset('gemini').layer.env?.GEMINI_TELEMETRY_ENABLED).toBe('false');
  });
});

describe('preset: in a policy', () => {
  it('brings the preset as the first layer', () => {
    const p = resolvePolicy(parsePolicy({ preset: 'claude' }));
    expect(p.agent?.name).toBe('claude');
    expect(p.network.allow).toEqual(['api.anthropic.com:443']);
    expect(p.secrets).toEqual([
      {
        name: 'ANTHROPIC_API_KEY',
        from: { env: 'ANTHROPIC_API_KEY' },
        bindings: [{ host: 'api.anthropic.com', pathPrefix: '/' }],
        header: { name: 'x-api-key' },
        allowPlainHttp: false,
      },
    ]);
    expect(p.env.IS_SANDBOX).toBe('1');
  });

  it('is extended by the policy: network.allow adds, a same-named secret replaces, env merges', () => {
    const file = parsePolicy({
      preset: 'claude',
      network: { allow: ['registry.npmjs.org'] },
      secrets: [
        { name: 'ANTHROPIC_API_KEY', from: { file: '/run/key' }, hosts: ['api.anthropic.com'] },
      ],
      env: { DISABLE_TELEMETRY: '0', EXTRA: 'x' },
      limits: { memory: '2g' },
    });
    const p = resolvePolicy(file);
    expect(p.network.allow).toEqual(['api.anthropic.com:443', 'registry.npmjs.org']);
    expect(p.secrets.map((s) => [s.name, s.from])).toEqual([
      ['ANTHROPIC_API_KEY', { file: '/run/key' }],
    ]);
    expect(p.env).toMatchObject({ DISABLE_TELEMETRY: '0', EXTRA: 'x', IS_SANDBOX: '1' });
    expect(p.limits.memory).toBe(2 * 1024 ** 3);
  });

  it('takes the last layer that names one (`nanocell agent NAME` over the file)', () => {
    const p = resolvePolicy(parsePolicy({ preset: 'claude' }), parsePolicy({ preset: 'codex' }));
    expect(p.agent?.name).toBe('codex');
    expect(p.network.allow).toEqual(['api.openai.com:443']);
  });

  it('leaves a policy without one as it was', () => {
    const p = resolvePolicy(parsePolicy({ network: { allow: ['example.com'] } }));
    expect(p.agent).toBeUndefined();
    expect(p.network.allow).toEqual(['example.com']);
  });

  it('refuses an unknown preset in one line listing the known ones', () => {
    const e = (() => {
      try {
        resolvePolicy(parsePolicy({ preset: 'cursor' }));
      } catch (err) {
        return err as PolicyError;
      }
    })();
    expect(e).toBeInstanceOf(PolicyError);
    expect(e!.message).toBe('unknown agent preset "cursor"');
    expect(e!.fix).toBe('use one of aider, claude, codex, gemini (nanocell agent --list)');
  });

  it('refuses a name that is not a preset name at parse time', () => {
    expect(() => parsePolicy({ preset: '../etc/passwd' })).toThrow(
      /preset: a preset name is lower-case letters/,
    );
  });
});
