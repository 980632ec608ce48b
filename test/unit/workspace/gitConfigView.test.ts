import { describe, expect, it } from 'vitest';
import { redactGitConfig } from '../../../src/workspace/gitConfigView.js';

describe('redactGitConfig', () => {
  it('drops user info from every URL and every extraHeader line, and nothing else', () => {
    const text = [
      '[remote "origin"]',
      '\turl = https://user:pass@github.com/a/b.git',
      '\tpushurl = ssh://git@host/x',
      '[url "https://tok@proxy.example/"]',
      '\tinsteadOf = https://github.com/',
      '[http]',
      '\tproxy = http://u:p@10.0.0.1:3128',
      '\tExtraHeader = Authorization: Bearer abc',
      '[user]',
      '\temail = a@b.example',
    ].join('\n');
    const r = redactGitConfig(text);
    expect(r.redacted).toBe(4);
    expect(r.text).not.toMatch(/pass|tok@|u:p@|Bearer/);
    expect(r.text).toContain('pushurl = ssh://git@host/x');
    expect(r.text).toContain('url = https://github.com/a/b.git');
    expect(r.text).toContain('email = a@b.example');
  });

  it('leaves a config without credentials as it is', () => {
    const text = '[core]\n\tbare = false\n[remote "o"]\n\turl = https://github.com/a/b\n';
    expect(redactGitConfig(text)).toEqual({ text, redacted: 0 });
  });
});
