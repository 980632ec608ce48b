// Checkpoints: a task's workspace state frozen as layers that any number of new tasks start
// from (`run --from CHECKPOINT`), each in its own cell. The layers are hard-linked copies of the
// session layers under `<state>/checkpoints/<id>/layers/<n>` (lowest first), so freezing costs
// no copy of content; a manifest of every entry's type, mode and hash is written with them and
// checked in full before a task starts from it: a damaged checkpoint is refused, never partly used.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { NanocellError } from '../util/errors.js';
import { hashFile } from '../workspace/fsSafe.js';
import { resolveStack } from './session.js';
import type { StateLayout } from './state.js';
import type { WorkspaceStack } from './stackMount.js';

const entrySchema = z.strictObject({
  path: z.string(),
  type: z.enum(['file', 'dir', 'symlink', 'whiteout']),
  mode: z.number().int(),
  sha256: z.string().optional(),
  target: z.string().optional(),
});
const checkpointSchema = z.strictObject({
  version: z.literal(1),
  id: z.string(),
  session: z.string(),
  projectDir: z.string(),
  /** The tasks whose change sets the layers hold, lowest first. */
  taskIds: z.array(z.string()),
  createdAtMs: z.number(),
  layers: z.array(z.array(entrySchema)),
});
export type CheckpointManifest = z.infer<typeof checkpointSchema>;
type Entry = z.infer<typeof entrySchema>;

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

/** Every entry of a layer tree, sorted: what the manifest holds and what verification compares. */
function listLayer(tree: string): Entry[] {
  const out: Entry[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(rel ? path.join(tree, rel) : tree).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const abs = path.join(tree, p);
      const st = fs.lstatSync(abs);
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        out.push({ path: p, type: 'dir', mode });
        walk(p);
      } else if (st.isFile())
        out.push({ path: p, type: 'file', mode, sha256: hashFile(abs).sha256 });
      else if (st.isSymbolicLink())
        out.push({ path: p, type: 'symlink', mode: 0, target: fs.readlinkSync(abs) });
      else if (st.isCharacterDevice() && st.rdev === 0)
        out.push({ path: p, type: 'whiteout', mode: 0 });
      else
        throw new NanocellError(
          `${abs} is not a file, dir, symlink or whiteout`,
          'discard the checkpoint',
          'STATE',
        );
    }
  };
  walk('');
  return out;
}

/** Freezes the state task `from` of `session` left (its chain of layers) as a checkpoint. */
export async function createCheckpoint(
  layout: StateLayout,
  session: string,
  from: string,
  project: string,
): Promise<CheckpointManifest> {
  const stack = await resolveStack(layout, session, from, project);
  return writeCheckpoint(
    layout,
    { session, projectDir: project, taskIds: () => stack.taskIds },
    (layers) => {
      const lowestFirst = [...stack.layers].reverse();
      for (const [i, tree] of lowestFirst.entries()) {
        // Hard links: the content is shared with the session layer, never copied.
        execFileSync('cp', ['-al', tree, path.join(layers, String(i))]);
      }
      return lowestFirst.length;
    },
  );
}

/**
 * Freezes a live cell's workspace: hard links of the layers it started on, and a copy of its
 * upper layer as it is now (the task keeps running: pause the agent for a quiet moment). Tasks
 * started from it cannot be applied with the session: the live task's state is in no change set.
 */
export function checkpointLiveCell(
  layout: StateLayout,
  o: { session: string; taskId: string; project: string; upper: string; stack: WorkspaceStack },
): CheckpointManifest {
  return writeCheckpoint(
    layout,
    { session: o.session, projectDir: o.project, taskIds: (id) => [...o.stack.taskIds, id] },
    (layers) => {
      const lowestFirst = [...o.stack.layers].reverse();
      for (const [i, tree] of lowestFirst.entries())
        execFileSync('cp', ['-al', tree, path.join(layers, String(i))]);
      const top = path.join(layers, String(lowestFirst.length));
      execFileSync('cp', ['-a', o.upper, top]);
      // The cell's files belong to its own host uid; a layer belongs to the state root's owner.
      execFileSync('chown', ['-R', '-h', `${process.geteuid!()}:${process.getegid!()}`, top]);
      return lowestFirst.length + 1;
    },
  );
}

/**
 * Builds a checkpoint in `<dir>.tmp` and renames it into place, so a crash leaves no half
 * checkpoint. `fill` lays the layers out as layers/0..n-1, lowest first, and returns n.
 */
function writeCheckpoint(
  layout: StateLayout,
  meta: { session: string; projectDir: string; taskIds: (id: string) => string[] },
  fill: (layersDir: string) => number,
): CheckpointManifest {
  const id = newCheckpointId();
  const dir = checkpointDir(layout, id);
  const tmp = `${dir}.tmp`;
  const layersDir = path.join(tmp, 'layers');
  fs.mkdirSync(layersDir, { recursive: true, mode: 0o700 });
  try {
    const n = fill(layersDir);
    const m: CheckpointManifest = {
      version: 1,
      id,
      session: meta.session,
      projectDir: meta.projectDir,
      taskIds: meta.taskIds(id),
      createdAtMs: Date.now(),
      layers: Array.from({ length: n }, (_, i) => listLayer(path.join(layersDir, String(i)))),
    };
    fs.writeFileSync(path.join(tmp, 'manifest.json'), JSON.stringify(m), { mode: 0o600 });
    fs.renameSync(tmp, dir);
    return m;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

const newCheckpointId = () => `ck${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;

function damaged(id: string, why: string): NanocellError {
  return new NanocellError(
    `checkpoint ${id} is damaged (${why}); nothing of it was used`,
    `remove it (rm -r the checkpoint under the state root) and make a new one`,
    'STATE',
  );
}

/** The checkpoint's layers for a new task, after checking every entry against the manifest. */
export function checkpointStack(layout: StateLayout, id: string, project: string): WorkspaceStack {
  const dir = checkpointDir(layout, id);
  let m: CheckpointManifest;
  try {
    m = checkpointSchema.parse(
      JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')),
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !fs.existsSync(dir))
      throw new NanocellError(
        `no checkpoint ${id}`,
        'see nanocell sessions for the checkpoints there are',
        'USAGE',
      );
    throw damaged(id, 'its manifest is unreadable');
  }
  if (m.id !== id) throw damaged(id, 'its manifest names another checkpoint');
  if (m.projectDir !== project)
    throw new NanocellError(
      `checkpoint ${id} is of ${m.projectDir}, not ${project}`,
      'start the task in that project',
      'USAGE',
    );
  const present = fs.readdirSync(path.join(dir, 'layers')).sort();
  const expected = m.layers.map((_, i) => String(i)).sort();
  if (present.join() !== expected.join()) throw damaged(id, 'its layers are not the ones recorded');
  const trees = m.layers.map((_, i) => path.join(dir, 'layers', String(i)));
  for (const [i, tree] of trees.entries()) {
    let got: Entry[];
    try {
      got = listLayer(tree);
    } catch (e) {
      throw damaged(id, (e as Error).message);
    }
    const want = m.layers[i]!;
    if (got.length !== want.length)
      throw damaged(id, `layer ${i} holds ${got.length} entries, not ${want.length}`);
    for (const [k, g] of got.entries()) {
      const w = want[k]!;
      if (JSON.stringify(g) !== JSON.stringify(w))
        throw damaged(id, `${g.path} in layer ${i} differs from its record`);
    }
  }
  return { layers: trees.reverse(), taskIds: m.taskIds };
}

export function listCheckpoints(layout: StateLayout): CheckpointManifest[] {
  const root = layout.checkpoints;
  const out: CheckpointManifest[] = [];
  for (const name of fs.existsSync(root) ? fs.readdirSync(root) : []) {
    if (!CHECKPOINT_ID.test(name)) continue;
    try {
      out.push(
        checkpointSchema.parse(
          JSON.parse(fs.readFileSync(path.join(root, name, 'manifest.json'), 'utf8')),
        ),
      );
    } catch {
      // damaged: listed by nothing, refused by --from
    }
  }
  return out.sort((a, b) => a.createdAtMs - b.createdAtMs);
}
