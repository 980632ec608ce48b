import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { modulesFor, verbOf } from '../../../src/cli/verbs.js';
import { VERSION } from '../../../src/cli/version.js';

const argv = (...a: string[]) => ['node', 'nanocell.mjs', ...a];

describe('CLI verb dispatch', () => {
  it('finds the verb after global options, skipping their values', () => {
    expect(verbOf(argv('run', '--', 'ls'))).toBe('run');
    expect(verbOf(argv('--state-root', '/tmp/x', 'ps'))).toBe('ps');
    expect(verbOf(argv('--state-root', 'logs'))).toBeUndefined();
    expect(verbOf(argv('--help'))).toBeUndefined();
  });

  it('loads one module for a known verb and every module otherwise', () => {
    expect(modulesFor('logs')).toHaveLength(1);
    expect(modulesFor('logs')[0]!.verbs).toContain('verify');
    expect(modulesFor(undefined).length).toBeGreaterThan(5);
    expect(modulesFor('nosuchverb')).toEqual(modulesFor(undefined));
  });

  it('prints the version package.json has', () => {
    const pkg = JSON.parse(fs.readFileSync(path.resolve('package.json'), 'utf8')) as {
      version: string;
    };
    expect(VERSION).toBe(pkg.version);
  });
});
