// Checkpoints: a task's workspace state frozen as layers that any number of new tasks start
// from (`run --from CHECKPOINT`), each in its own cell. A checkpoint of a task pins the session
// layers it is made of (they are never written once built, and retention keeps them while a
// checkpoint names them); one of a live cell also owns a copy of the cell's upper layer, under
// `own/`. Every layer is sealed (layerSeal.ts: hashed once, a stat fingerprint, a MAC), and the
// manifest is under the same MAC: before a task starts from a checkpoint, every layer's
// fingerprint is checked (a full rehash when it moved), and a damaged checkpoint is refused,
// never partly used. `layers/<n>` are links to the trees, lowest first, for people to look at.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { NanocellError } from '../util/errors.js';
import { checkLayer, LayerDamage, readSealed, sealLayer, writeSealed } from './layerSeal.js';
import { resolveStack } from './session.js';
import type { StateLayout } from './state.js';
import type { WorkspaceStack } from './stackMount.js';

const checkpointSchema = z.strictObject({
  version: z.literal(2),
  id: z.string(),
  session: z.string(),
  projectDir: z.string(),
  /** The tasks whose change sets the layers hold, lowest first. */
  taskIds: z.array(z.string()),
  createdAtMs: z.number(),
  /** The layer trees, relative to the state root, lowest first. */
  layers: z.array(z.string()),
});
export type CheckpointManifest = z.infer<typeof checkpointSchema>;

export const CHECKPOINT_ID = /^ck[0-9a-z]{8,40}$/;

function checkpointDir(layout: StateLayout, id: string): string {
  if (!CHECKPOINT_ID.test(id)) {
    throw new NanocellError(
      `${JSON.stringify(id)} is not a checkpoint id`,
      'see nanocell sessions',
      'USAGE',
    );
  }
  return path.join(layout.checkpoints, id);
}

/** Freezes the state task `from` of `session` left (its chain of layers) as a checkpoint. */
export async function createCheckpoint(
  layout: StateLayout,
  session: string,
  from: string,
  project: string,
): Promise<CheckpointManifest> {
  // Builds and seals the layers that are missing: the one hashing of their content.
  const stack = await resolveStack(layout, session, from, project);
  return writeCheckpoint(
    layout,
    { session, projectDir: project, taskIds: () => stack.taskIds },
    async () => [...stack.layers].reverse(),
  );
}

/**
 * Freezes a live cell's workspace: the layers it started on, and a copy of its upper layer
 * taken inside `frozen` (which stops the cell's processes while it runs: a point in time).
 * Tasks started from it cannot be applied with the session: the live task's state is in no
 * change set.
 */
export function checkpointLiveCell(
  layout: StateLayout,
  o: { session: string; taskId: string; project: string; upper: string; stack: WorkspaceStack },
  frozen: (capture: () => void) => Promise<void>,
): Promise<CheckpointManifest> {
  return writeCheckpoint(
    layout,
    { session: o.session, projectDir: o.project, taskIds: (id) => [...o.stack.taskIds, id] },
    async (tmp, dir) => {
      const own = path.join(tmp, 'own');
      fs.mkdirSync(own, { mode: 0o700 });
      const top = path.join(own, '0');
      await frozen(() => execFileSync('cp', ['-a', o.upper, top]));
      // The cell's files belong to its own host uid; a layer belongs to the state root's owner.
      execFileSync('chown', ['-R', '-h', `${process.geteuid!()}:${process.getegid!()}`, top]);
      // Hashed after the cell is thawed: the copy is ours.
      await sealLayer(layout, top, path.join(dir, 'own', '0'));
      return [...[...o.stack.layers].reverse(), path.join(dir, 'own', '0')];
    },
  );
}

/**
 * Builds a checkpoint in `<dir>.tmp` and renames it into place, so a crash leaves no half
 * checkpoint. `fill` makes what the checkpoint owns in the tmp dir and returns the layer trees
 * as they will be once it is in place, lowest first.
 */
async function writeCheckpoint(
  layout: StateLayout,
  meta: { session: string; projectDir: string; taskIds: (id: string) => string[] },
  fill: (tmp: string, dir: string) => Promise<string[]>,
): Promise<CheckpointManifest> {
  const id = newCheckpointId();
  const dir = checkpointDir(layout, id);
  const tmp = `${dir}.tmp`;
  fs.mkdirSync(path.join(tmp, 'layers'), { recursive: true, mode: 0o700 });
  try {
    const trees = await fill(tmp, dir);
    for (const [i, tree] of trees.entries())
      fs.symlinkSync(
        path.relative(path.join(dir, 'layers'), tree),
        path.join(tmp, 'layers', `${i}`),
      );
    const m: CheckpointManifest = {
      version: 2,
      id,
      session: meta.session,
      projectDir: meta.projectDir,
      taskIds: meta.taskIds(id),
      createdAtMs: Date.now(),
      layers: trees.map((t) => path.relative(layout.root, t)),
    };
    writeSealed(layout, path.join(tmp, 'manifest.json'), m);
    fs.renameSync(tmp, dir);
    return m;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

const newCheckpointId = () => `ck${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;

class CheckpointDamaged extends NanocellError {
  constructor(
    id: string,
    readonly why: string,
  ) {
    super(
      `checkpoint ${id} is damaged (${why}); nothing of it was used`,
      `remove it (rm -r the checkpoint under the state root) and make a new one`,
      'STATE',
    );
  }
}

const damaged = (id: string, why: string) => new CheckpointDamaged(id, why);

function readManifest(layout: StateLayout, id: string): CheckpointManifest {
  const dir = checkpointDir(layout, id);
  let m: CheckpointManifest;
  try {
    m = checkpointSchema.parse(readSealed(layout, path.join(dir, 'manifest.json')).head);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !fs.existsSync(dir))
      throw new NanocellError(
        `no checkpoint ${id}`,
        'see nanocell sessions for the checkpoints there are',
        'USAGE',
      );
    throw damaged(id, e instanceof LayerDamage ? e.message : 'its manifest is unreadable');
  }
  if (m.id !== id) throw damaged(id, 'its manifest names another checkpoint');
  return m;
}

/**
 * Every layer of a checkpoint checked against its seal (`full`: rehashed whatever the
 * fingerprints say); the trees, lowest first. Throws the checkpoint's damage.
 */
async function checkedTrees(
  layout: StateLayout,
  m: CheckpointManifest,
  full = false,
): Promise<string[]> {
  const dir = checkpointDir(layout, m.id);
  const trees = m.layers.map((rel) => path.resolve(layout.root, rel));
  const view = path.join(dir, 'layers');
  const present = fs.existsSync(view) ? fs.readdirSync(view).sort() : [];
  const links = trees.map((t, i) => {
    try {
      return fs.realpathSync(path.join(view, `${i}`)) === t;
    } catch {
      return false;
    }
  });
  if (
    present.join() !==
      trees
        .map((_, i) => `${i}`)
        .sort()
        .join() ||
    links.includes(false)
  )
    throw damaged(m.id, 'its layers are not the ones recorded');
  for (const [i, tree] of trees.entries()) {
    try {
      await checkLayer(layout, tree, { label: `layer ${i}`, full });
    } catch (e) {
      if (e instanceof LayerDamage) throw damaged(m.id, e.message);
      throw e;
    }
  }
  return trees;
}

/** The checkpoint's layers for a new task, after checking every layer against its seal. */
export async function checkpointStack(
  layout: StateLayout,
  id: string,
  project: string,
): Promise<WorkspaceStack> {
  const m = readManifest(layout, id);
  if (m.projectDir !== project)
    throw new NanocellError(
      `checkpoint ${id} is of ${m.projectDir}, not ${project}`,
      'start the task in that project',
      'USAGE',
    );
  const trees = await checkedTrees(layout, m);
  return { layers: trees.reverse(), taskIds: m.taskIds, checkpoint: checkpointDir(layout, id) };
}

/**
 * Rehashes every checkpoint in full, whatever the fingerprints say (`nanocell sessions
 * --verify`): each one's damage, or null. Silent disk corruption moves no ctime; this finds it.
 */
export async function verifyCheckpoints(
  layout: StateLayout,
): Promise<{ id: string; damage: string | null }[]> {
  const root = layout.checkpoints;
  const out: { id: string; damage: string | null }[] = [];
  for (const id of (fs.existsSync(root) ? fs.readdirSync(root) : []).sort()) {
    if (!CHECKPOINT_ID.test(id)) continue;
    try {
      await checkedTrees(layout, readManifest(layout, id), true);
      out.push({ id, damage: null });
    } catch (e) {
      if (!(e instanceof CheckpointDamaged)) throw e;
      out.push({ id, damage: e.why });
    }
  }
  return out;
}

export function listCheckpoints(layout: StateLayout): CheckpointManifest[] {
  const root = layout.checkpoints;
  const out: CheckpointManifest[] = [];
  for (const name of fs.existsSync(root) ? fs.readdirSync(root) : []) {
    if (!CHECKPOINT_ID.test(name)) continue;
    try {
      out.push(
        checkpointSchema.parse(readSealed(layout, path.join(root, name, 'manifest.json')).head),
      );
    } catch {
      // damaged: listed by nothing, refused by --from
    }
  }
  return out.sort((a, b) => a.createdAtMs - b.createdAtMs);
}
