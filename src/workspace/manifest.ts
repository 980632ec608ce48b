// The change set on disk: <changes>/<task>/manifest.json plus files/<sha256> holding contents.
// The manifest is validated on every load; apply trusts nothing in it it has not re-checked.
import { lstatSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { NanocellError } from '../util/errors.js';

const MAX_MANIFEST_BYTES = 512 * 1024 * 1024;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const count = z.number().int().nonnegative();
const fileTypes = ['file', 'dir', 'symlink'] as const;

const baseStateSchema = z.strictObject({
  exists: z.boolean(),
  type: z.enum(['file', 'dir', 'symlink', 'other']).optional(),
  size: count.optional(),
  mode: z.number().int().min(0).max(0o7777).optional(),
  mtimeMs: z.number().optional(),
  ctimeMs: z.number().optional(),
  sha256: sha256.optional(),
  target: z.string().optional(),
  /** Set by a three-way merge at apply: the project's state was taken then, not at the start. */
  mergedAtMs: z.number().optional(),
});

const entrySchema = z.strictObject({
  path: z.string(),
  /** add: did not exist; modify: content or type changed; mode: permissions only; delete. */
  kind: z.enum(['add', 'modify', 'mode', 'delete']),
  /** The new type (for delete: the type that is removed). */
  type: z.enum(fileTypes),
  mode: z.number().int().min(0).max(0o7777).optional(),
  size: count.optional(),
  sha256: sha256.optional(),
  target: z.string().optional(),
  /** The agent set setuid/setgid/sticky bits; they were dropped. */
  modeMasked: z.boolean().optional(),
  /** The project's state of this path when the change set was collected. */
  base: baseStateSchema,
});

const refusedSchema = z.strictObject({ path: z.string(), reason: z.string() });

const manifestSchema = z.strictObject({
  version: z.literal(1),
  taskId: z.string().min(1),
  projectDir: z.string().min(1),
  projectId: z.strictObject({ dev: z.string(), ino: z.string() }),
  startedAtMs: z.number(),
  collectedAtMs: z.number(),
  /** refused: nothing was stored (limits exceeded or the upper dir was unreadable). */
  status: z.enum(['ok', 'refused']),
  reason: z.string().optional(),
  patterns: z.strictObject({
    include: z.array(z.string()),
    exclude: z.array(z.string()),
    protected: z.array(z.string()),
  }),
  /** Hidden paths of the scope plan: apply never touches them. */
  hidden: z.array(z.string()),
  limits: z.strictObject({ maxFiles: count, maxBytes: count, maxNameBytes: count.optional() }),
  entries: z.array(entrySchema),
  /** Changes the agent made that are never applied, with the reason. */
  refused: z.array(refusedSchema),
  totalBytes: count,
  /** Paths left out by the policy's workspace.ignore (generated files): how many, a few. */
  ignored: z.strictObject({ count, examples: z.array(z.string()) }).optional(),
  /** false: the policy let apply write what the project's .gitignore ignores. */
  gitignore: z.boolean().optional(),
  /** The session the task ran in. */
  session: z.string().optional(),
  /**
   * The tasks whose unapplied change sets the task started from, lowest first: its entries
   * are judged against the project plus those, and only `apply --session` may write them.
   */
  stack: z.array(z.string().min(1)).optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type ChangeEntry = z.infer<typeof entrySchema>;
export type BaseState = z.infer<typeof baseStateSchema>;
export type RefusedChange = z.infer<typeof refusedSchema>;

export interface ChangeSet {
  dir: string;
  manifest: Manifest;
}

function corrupted(dir: string, why: string): NanocellError {
  return new NanocellError(
    `change set ${dir} is corrupted: ${why}`,
    `discard it (nanocell discard) and run the task again`,
    'STATE',
  );
}

/** Reads and validates `<dir>/manifest.json`. */
export function loadChangeSet(dir: string): ChangeSet {
  const path = `${dir}/manifest.json`;
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) {
    throw new NanocellError(
      `no change set at ${dir}`,
      'check the task id (nanocell ps / the task report); it may have been applied or discarded',
      'STATE',
    );
  }
  if (!st.isFile()) throw corrupted(dir, 'manifest.json is not a regular file');
  if (st.size > MAX_MANIFEST_BYTES) throw corrupted(dir, 'manifest.json is too large');
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw corrupted(dir, 'manifest.json is not valid JSON');
  }
  const r = manifestSchema.safeParse(doc);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw corrupted(dir, `manifest.json: ${i.path.join('.') || '(top)'}: ${i.message}`);
  }
  return { dir, manifest: r.data };
}

export interface ChangeSummary {
  taskId: string;
  dir: string;
  status: 'ok' | 'refused';
  reason?: string;
  counts: { add: number; modify: number; mode: number; delete: number; refused: number };
  totalBytes: number;
  /** Up to SUMMARY_LIST_CAP changes, then `more` says how many were left out. */
  changes: Array<{ path: string; kind: ChangeEntry['kind'] | 'refused'; detail?: string }>;
  more: number;
}

const SUMMARY_LIST_CAP = 100;

export function summarize(cs: ChangeSet): ChangeSummary {
  const m = cs.manifest;
  const counts = { add: 0, modify: 0, mode: 0, delete: 0, refused: m.refused.length };
  for (const e of m.entries) counts[e.kind]++;
  const all: ChangeSummary['changes'] = [
    ...m.refused.map((r) => ({ path: r.path, kind: 'refused' as const, detail: r.reason })),
    ...m.entries.map((e) => ({ path: e.path, kind: e.kind })),
  ];
  return {
    taskId: m.taskId,
    dir: cs.dir,
    status: m.status,
    ...(m.reason ? { reason: m.reason } : {}),
    counts,
    totalBytes: m.totalBytes,
    changes: all.slice(0, SUMMARY_LIST_CAP),
    more: Math.max(0, all.length - SUMMARY_LIST_CAP),
  };
}
