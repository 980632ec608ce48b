// Cold start (library and CLI) and exec in a live cell, each against the peers in the same run.
import { spawn } from 'node:child_process';
import { Cell } from '../../src/cell/cell.js';
import type { Peer, Peers } from './peers.js';
import { runQuiet } from './peers.js';
import type { Figure, Row, RowKind } from './report.js';
import { stat, timeIt } from './stats.js';
import { FULL_POLICY, VARIANTS, cellOnce, cliOnce, type Ctx } from './nanocell.js';

interface Contender {
  label: string;
  kind: RowKind;
  run: () => Promise<unknown>;
}

/**
 * Runs every contender once per round, in an order that rotates each round, after one warm-up
 * each. A contender that fails is dropped from later rounds and reported as failed.
 */
export async function roundRobin(
  contenders: Contender[],
  rounds: number,
  log: (s: string) => void,
): Promise<{ rows: Row[]; failures: string[] }> {
  const samples = new Map<Contender, number[]>(contenders.map((c) => [c, []]));
  const failed = new Map<Contender, string>();
  const attempt = async (c: Contender, keep: boolean) => {
    if (failed.has(c)) return;
    try {
      const ms = await timeIt(c.run);
      if (keep) samples.get(c)!.push(ms);
    } catch (e) {
      failed.set(c, `${c.label}: ${(e as Error).message.split('\n')[0]!.slice(0, 300)}`);
    }
  };
  for (const c of contenders) await attempt(c, false);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < contenders.length; i++) {
      await attempt(contenders[(i + r) % contenders.length]!, true);
    }
    if ((r + 1) % 5 === 0) log(`  round ${r + 1}/${rounds}`);
  }
  return {
    rows: contenders.map((c) => ({ label: c.label, kind: c.kind, stat: stat(samples.get(c)!) })),
    failures: [...failed.values()],
  };
}

const peerContender = (p: Peer): Contender[] =>
  p.unavailable ? [] : [{ label: p.name, kind: 'peer', run: p.run }];

function ratioTarget(rows: Row[], a: string, b: string, text: string, limit: number, why: string) {
  const x = rows.find((r) => r.label === a)?.stat.p50;
  const y = rows.find((r) => r.label === b)?.stat.p50;
  if (x === undefined || y === undefined || !Number.isFinite(x) || !Number.isFinite(y)) {
    return { text, met: null, detail: `${b} could not be measured` };
  }
  const ratio = x / y;
  const met = ratio <= limit;
  return {
    text,
    met,
    detail: `${a} p50 ${x.toFixed(0)} ms ÷ ${b} p50 ${y.toFixed(0)} ms = ${ratio.toFixed(2)}x.${met ? '' : ` ${why}`}`,
  };
}

export async function coldStartLibrary(
  ctx: Ctx,
  peers: Peers,
  rounds: number,
  log: (s: string) => void,
  why: string,
): Promise<Figure> {
  const contenders: Contender[] = [
    ...VARIANTS.map((v) => ({
      label: v.label,
      kind: 'nanocell' as const,
      run: () => cellOnce(ctx, v.opts),
    })),
    ...peerContender(peers.runc),
    ...peerContender(peers.bwrap),
    { label: 'fork+exec /bin/true', kind: 'baseline', run: () => runQuiet('/bin/true', []) },
  ];
  const { rows, failures } = await roundRobin(contenders, rounds, log);
  return {
    id: 'cold-start-library',
    title: 'Cold start through the library',
    unit: 'ms',
    what:
      'One supervisor process creates a cell, runs `/bin/true` in it and destroys it (`Cell.create`, `cell.run`, `cell.destroy`). ' +
      '"nanocell full" has the workspace overlay, the seccomp monitor, the network proxy with one allowed host and cgroup limits; ' +
      'each "… off" row drops one of them (bench-only `benchOff` switches; "network proxy off" is a policy with no allowed host). ' +
      'Peers are spawned from the same process: raw runc runs its default spec with the host /usr, bubblewrap runs `--unshare-all`.',
    rows,
    targets: [
      ratioTarget(
        rows,
        'nanocell full',
        'raw runc',
        'library cold start p50 ≤ 1.5x raw runc',
        1.5,
        why,
      ),
    ],
    notes: failures.map((f) => `Failed: ${f}`),
  };
}

export async function coldStartCli(
  ctx: Ctx,
  peers: Peers,
  rounds: number,
  log: (s: string) => void,
  why: string,
): Promise<Figure> {
  const contenders: Contender[] = [
    {
      label: 'nanocell CLI, full policy',
      kind: 'nanocell',
      run: () => cliOnce(ctx, ['--allow-net', 'bench.test']),
    },
    { label: 'nanocell CLI, no network', kind: 'nanocell', run: () => cliOnce(ctx, []) },
    ...peerContender(peers.srt),
    ...peerContender(peers.docker),
    ...peerContender(peers.runc),
    ...peerContender(peers.bwrap),
    {
      label: 'node + nanocell --version',
      kind: 'baseline',
      run: () => runQuiet(process.execPath, [`${ctx.repo}/dist/cli/nanocell.mjs`, '--version']),
    },
    {
      label: 'node -e 0',
      kind: 'baseline',
      run: () => runQuiet(process.execPath, ['-e', '0']),
    },
  ];
  const { rows, failures } = await roundRobin(contenders, rounds, log);
  return {
    id: 'cold-start-cli',
    title: 'Cold start through the CLI',
    unit: 'ms',
    what:
      'End to end from a shell: `nanocell run --quiet --workspace DIR [--allow-net bench.test] -- /bin/true` ' +
      '(node start, policy, cell, audit record, report, cleanup) against `srt -s settings.json /bin/true` ' +
      '(one allowed domain), `docker run --rm --network none IMAGE /bin/true` (a locally imported image holding a static /bin/true), raw runc and bubblewrap. ' +
      'The baselines show what node itself and loading the CLI cost.',
    rows,
    targets: [
      ratioTarget(
        rows,
        'nanocell CLI, full policy',
        'srt CLI',
        'CLI cold start < 1/2 of srt CLI',
        0.5,
        why,
      ),
    ],
    notes: failures.map((f) => `Failed: ${f}`),
  };
}

function hostTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('/bin/true', [], { stdio: 'ignore' });
    p.once('error', reject);
    p.once('close', () => resolve());
  });
}

export async function execFigure(
  ctx: Ctx,
  peers: Peers,
  execs: number,
  peerExecs: number,
  log: (s: string) => void,
): Promise<Figure> {
  const cell = await Cell.create({
    policy: FULL_POLICY,
    workspace: ctx.project,
    stateRoot: ctx.stateRoot,
  });
  const times: number[] = [];
  const host: number[] = [];
  try {
    for (let i = 0; i < 20; i++) await cell.run(['/bin/true']);
    for (let i = 0; i < execs; i++) {
      times.push(
        await timeIt(async () => {
          const r = await cell.run(['/bin/true']);
          if (r.exitCode !== 0) throw new Error(`exec exited ${r.exitCode}`);
        }),
      );
      host.push(await timeIt(hostTrue));
    }
  } finally {
    await cell.destroy();
  }
  log(`  ${execs} execs done`);
  const peerRows = await roundRobin(
    [...peerContender(peers.runcExec), ...peerContender(peers.dockerExec)],
    peerExecs,
    log,
  );
  const rows: Row[] = [
    { label: 'nanocell exec (live cell)', kind: 'nanocell', stat: stat(times) },
    ...peerRows.rows,
    { label: 'fork+exec /bin/true on the host', kind: 'baseline', stat: stat(host) },
  ];
  const p50 = rows[0]!.stat.p50;
  return {
    id: 'exec',
    title: 'Exec in a live cell',
    unit: 'ms',
    what:
      '`cell.run(["/bin/true"])` in a cell with the full policy that is already running (after 20 warm-up execs): ' +
      'a frame to init over the control socket, fork, Landlock-checked execve, the seccomp exec notification to the monitor, reap, exit frame. ' +
      'Peers: `runc exec` and `docker exec` into a running container.',
    rows,
    targets: [
      {
        text: 'exec p50 < 10 ms',
        met: p50 < 10,
        detail:
          `p50 ${p50.toFixed(2)} ms, p95 ${rows[0]!.stat.p95.toFixed(2)} ms over ${execs} execs; ` +
          `a plain fork+exec of /bin/true from the same node process took p50 ${rows[rows.length - 1]!.stat.p50.toFixed(2)} ms in the same run.` +
          (p50 < 10
            ? ''
            : ' The floor here is node spawning a process under this load; the cell adds the control-socket round trip to init and the monitor answering the exec notification.'),
      },
    ],
    notes: peerRows.failures.map((f) => `Failed: ${f}`),
  };
}
