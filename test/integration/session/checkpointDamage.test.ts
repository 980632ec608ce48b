// Every way a checkpoint can be damaged on disk is refused before a task starts from it, and
// nothing of it is used: content changed at the same size, an entry added, one removed, a mode
// changed, the manifest or a layer's seal edited. An entry whose metadata moved but whose
// content did not (a chmod to the same mode) is rehashed and still used. `sessions --verify`
// rehashes them all.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leftovers, makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
beforeAll(() => {
  sb = makeSandbox({ 'f.txt': 'original\n' });
});
afterAll(() => sb.cleanup());

const run = (session: string, extra: string[], script: string) =>
  nanocell(
    ['run', '--quiet', '--workspace', sb.project, '--session', session, ...extra, '--'].concat([
      'sh',
      '-c',
      script,
    ]),
    { stateRoot: sb.stateRoot },
  );

/** A fresh task and a checkpoint of it: each case damages its own (layers are shared). */
function freshCheckpoint(session: string): { id: string; layer: string; dir: string } {
  const base = run(session, [], 'mkdir -p sub; echo a > a.txt; echo b > sub/b.txt');
  expect(base.status).toBe(0);
  const t = /change set ([0-9a-z]+)/.exec(base.stderr)![1]!;
  const ck = nanocell(['checkpoint', t], { stateRoot: sb.stateRoot });
  expect(ck.status).toBe(0);
  const id = /checkpoint (ck[0-9a-z]+)/.exec(ck.stdout)![1]!;
  const dir = path.join(sb.stateRoot, 'checkpoints', id);
  return { id, dir, layer: fs.realpathSync(path.join(dir, 'layers', '0')) };
}

function overwriteSameSize(file: string, text: string) {
  expect(fs.statSync(file).size).toBe(text.length);
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, text, 0);
  } finally {
    fs.closeSync(fd);
  }
}

const cases: [string, (c: { layer: string; dir: string }) => void, RegExp][] = [
  [
    'content changed, same size',
    ({ layer }) => overwriteSameSize(path.join(layer, 'sub/b.txt'), 'B\n'),
    /sub\/b\.txt in layer 0 differs from its record/,
  ],
  [
    'file added',
    ({ layer }) => fs.writeFileSync(path.join(layer, 'sub/planted.txt'), 'x\n'),
    /sub\/planted\.txt in layer 0 is not in its record/,
  ],
  [
    'file removed',
    ({ layer }) => fs.rmSync(path.join(layer, 'a.txt')),
    /a\.txt in layer 0 is missing/,
  ],
  [
    'mode changed',
    ({ layer }) => fs.chmodSync(path.join(layer, 'a.txt'), 0o755),
    /a\.txt in layer 0 differs from its record/,
  ],
  [
    'manifest edited',
    ({ dir }) => {
      const file = path.join(dir, 'manifest.json');
      fs.writeFileSync(
        file,
        fs.readFileSync(file, 'utf8').replace('"taskIds":[', '"taskIds":["x",'),
      );
    },
    /manifest\.json is not the one nanocell wrote/,
  ],
  [
    "layer's seal edited",
    ({ layer }) => {
      const file = `${layer}.seal`;
      const text = fs.readFileSync(file, 'utf8');
      fs.writeFileSync(file, text.replace(/"fingerprint":"[0-9a-f]+"/, '"fingerprint":"00"'));
    },
    /the seal of layer 0: .* is not the one nanocell wrote/,
  ],
];

describe('damaged checkpoints', () => {
  it.each(cases)('refuses one with %s, using nothing of it', (_name, damage, why) => {
    const c = freshCheckpoint('dmg');
    damage(c);
    const r = run('dmg', ['--from', c.id], 'echo started');
    expect(r.stderr).toMatch(new RegExp(`checkpoint ${c.id} is damaged .*nothing of it was used`));
    expect(r.stderr).toMatch(why);
    expect(r.stdout).toBe('');
    expect(r.status).not.toBe(0);
    expect(leftovers(sb.stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });
  });

  it('uses one whose metadata moved but whose content is intact (rehashed)', () => {
    const c = freshCheckpoint('touched');
    const seal = () => fs.readFileSync(`${c.layer}.seal`, 'utf8');
    const sealed = seal();
    fs.chmodSync(path.join(c.layer, 'a.txt'), fs.statSync(path.join(c.layer, 'a.txt')).mode);
    const r = run('touched', ['--from', c.id], 'cat a.txt sub/b.txt');
    expect(r.stderr).not.toMatch(/damaged/);
    expect(r.stdout).toBe('a\nb\n');
    expect(r.status).toBe(0);
    // Sealed again with its new fingerprint, which the next start finds unchanged.
    const resealed = seal();
    expect(resealed).not.toBe(sealed);
    const again = run('touched', ['--from', c.id], 'cat a.txt');
    expect(again.stdout).toBe('a\n');
    expect(seal()).toBe(resealed);
  });

  it('sessions --verify rehashes every checkpoint and names the damaged ones', () => {
    const intact = freshCheckpoint('verify');
    const bad = freshCheckpoint('verify');
    overwriteSameSize(path.join(bad.layer, 'a.txt'), 'A\n');
    const r = nanocell(['sessions', '--verify'], { stateRoot: sb.stateRoot });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`checkpoint ${intact.id}: intact\n`);
    expect(r.stdout).toContain(
      `checkpoint ${bad.id}: DAMAGED: a.txt in layer 0 differs from its record\n`,
    );
  });
});
