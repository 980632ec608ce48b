// Seals of frozen layers (session layers and a checkpoint's own ones): every entry's type, mode
// and SHA-256, hashed once when the layer is made, plus a stat fingerprint of the tree taken
// right after (inode, size, mode, mtime and ctime of every entry), both under an HMAC with the
// state root's key. Checking a seal is a walk of stats, not a rehash: any change made through
// the file system moves a ctime (content, mode, owner, links; adding, removing or renaming an
// entry moves its dir's), which no caller can set back. When the fingerprint differs, the tree
// is rehashed in full and used only if every entry still matches its record (see
// docs/threat-model.md, W5c).
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { hashFile } from '../workspace/fsSafe.js';
import type { StateLayout } from './state.js';

const entrySchema = z.strictObject({
  path: z.string(),
  type: z.enum(['file', 'dir', 'symlink', 'whiteout']),
  mode: z.number().int(),
  sha256: z.string().optional(),
  target: z.string().optional(),
});
type Entry = z.infer<typeof entrySchema>;

const sealSchema = z.strictObject({
  version: z.literal(1),
  /** The tree this seal is of, relative to the state root: a seal is bound to its place. */
  tree: z.string(),
  fingerprint: z.string(),
});
type Seal = z.infer<typeof sealSchema> & { entries: string };

/** A layer whose tree or seal does not match: the reason, for the refusal. */
export class LayerDamage extends Error {}

/** Where the seal of `tree` is kept: next to it, outside what the overlay shows. */
const sealPath = (tree: string): string => `${tree}.seal`;

/** The state root's MAC key, made on first use (0600, the state root's owner only). */
function key(layout: StateLayout): Buffer {
  const file = layout.sealKey;
  try {
    return fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  // Written aside and linked into place: a reader never sees a key half written.
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, randomBytes(32), { mode: 0o600 });
  try {
    fs.linkSync(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another process made it
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return fs.readFileSync(file);
}

/** MAC of `body` under the state root's key, as hex. */
function macOf(layout: StateLayout, body: string): string {
  return createHmac('sha256', key(layout)).update(body).digest('hex');
}

function macMatches(layout: StateLayout, body: string, mac: string): boolean {
  const want = Buffer.from(macOf(layout, body), 'hex');
  const got = Buffer.from(mac, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * `mac\n`, the JSON head, and optionally `\n` and a JSON tail: the MAC covers both and is
 * checked on the bytes before anything is parsed; a reader that needs only the head does not
 * parse the tail (a seal's 10k entries).
 */
export function writeSealed(layout: StateLayout, file: string, head: object, tail?: unknown): void {
  const body = JSON.stringify(head) + (tail === undefined ? '' : `\n${JSON.stringify(tail)}`);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${macOf(layout, body)}\n${body}`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** The head of a sealed file and its tail unparsed, or a LayerDamage when it is not ours. */
export function readSealed(layout: StateLayout, file: string): { head: unknown; tail?: string } {
  const text = fs.readFileSync(file, 'utf8');
  const nl = text.indexOf('\n');
  if (nl < 0 || !macMatches(layout, text.slice(nl + 1), text.slice(0, nl)))
    throw new LayerDamage(`${path.basename(file)} is not the one nanocell wrote`);
  const nl2 = text.indexOf('\n', nl + 1);
  if (nl2 < 0) return { head: JSON.parse(text.slice(nl + 1)) };
  return { head: JSON.parse(text.slice(nl + 1, nl2)), tail: text.slice(nl2 + 1) };
}

type Visit = (rel: string, abs: string, st: fs.BigIntStats) => void;

/** Every entry below `tree` (not itself), parents first, names sorted. */
function walk(tree: string, visit: Visit): void {
  const go = (rel: string) => {
    for (const name of fs.readdirSync(rel ? path.join(tree, rel) : tree).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const abs = path.join(tree, p);
      const st = fs.lstatSync(abs, { bigint: true });
      visit(p, abs, st);
      if (st.isDirectory()) go(p);
    }
  };
  go('');
}

/** The stat fingerprint of a tree: what any change through the file system moves. */
function fingerprint(tree: string): string {
  const h = createHash('sha256');
  const line = (rel: string, st: fs.BigIntStats) =>
    h.update(
      `${rel}\0${st.mode}\0${st.ino}\0${st.size}\0${st.rdev}\0${st.mtimeNs}\0${st.ctimeNs}\n`,
    );
  line('.', fs.lstatSync(tree, { bigint: true }));
  walk(tree, (rel, _abs, st) => line(rel, st));
  return h.digest('hex');
}

/** Files hashed between two yields to the event loop (a server runs other cells meanwhile). */
const HASH_BATCH = 256;

/** Every entry of a tree with its content hash: what a seal records and a rehash compares. */
async function listLayer(tree: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const files: Entry[] = [];
  walk(tree, (p, abs, st) => {
    const mode = Number(st.mode & 0o7777n);
    if (st.isDirectory()) out.push({ path: p, type: 'dir', mode });
    else if (st.isFile()) {
      const e: Entry = { path: p, type: 'file', mode, sha256: '' };
      out.push(e);
      files.push(e);
    } else if (st.isSymbolicLink())
      out.push({ path: p, type: 'symlink', mode: 0, target: fs.readlinkSync(abs) });
    else if (st.isCharacterDevice() && st.rdev === 0n)
      out.push({ path: p, type: 'whiteout', mode: 0 });
    else throw new LayerDamage(`${p} is not a file, dir, symlink or whiteout`);
  });
  // Synchronous reads stream each file through sha256 faster than a pool of async ones (most
  // files of a change are small); yielding now and then keeps the event loop responsive.
  for (const [i, e] of files.entries()) {
    if (i && i % HASH_BATCH === 0) await new Promise((r) => setImmediate(r));
    e.sha256 = hashFile(path.join(tree, e.path)).sha256;
  }
  return out;
}

const relTree = (layout: StateLayout, tree: string) => path.relative(layout.root, tree);

/**
 * Hashes a finished layer once and seals it. Call when nothing writes to the tree any more
 * (it is in the state root, where only nanocell writes). `at`: where the tree will be once its
 * parent dir is renamed into place (a rename moves no ctime below the renamed dir).
 */
export async function sealLayer(layout: StateLayout, tree: string, at = tree): Promise<void> {
  const entries = await listLayer(tree);
  const head = { version: 1, tree: relTree(layout, at), fingerprint: fingerprint(tree) };
  writeSealed(layout, sealPath(tree), head, entries);
}

/** Seals `tree` unless it has a seal (a layer of an older nanocell gets one now). */
export async function ensureSealed(layout: StateLayout, tree: string): Promise<void> {
  if (!fs.existsSync(sealPath(tree))) await sealLayer(layout, tree);
}

function loadSeal(layout: StateLayout, tree: string, label: string): Seal {
  let seal: Seal;
  try {
    const { head, tail } = readSealed(layout, sealPath(tree));
    seal = { ...sealSchema.parse(head), entries: tail ?? '' };
  } catch (e) {
    if (e instanceof LayerDamage) throw new LayerDamage(`the seal of ${label}: ${e.message}`);
    throw new LayerDamage(`the seal of ${label} is missing or unreadable`);
  }
  if (seal.tree !== relTree(layout, tree))
    throw new LayerDamage(`the seal of ${label} is of another layer`);
  return seal;
}

/** Compares every entry of `tree`, content included, with its seal; throws the first difference. */
async function rehash(tree: string, seal: Seal, label: string): Promise<void> {
  let want: Entry[];
  try {
    want = z.array(entrySchema).parse(JSON.parse(seal.entries));
  } catch {
    throw new LayerDamage(`the seal of ${label} is unreadable`);
  }
  let got: Entry[];
  try {
    got = await listLayer(tree);
  } catch (e) {
    throw new LayerDamage(`${label}: ${(e as Error).message}`);
  }
  const byPath = new Map(want.map((w) => [w.path, w]));
  for (const g of got) {
    const w = byPath.get(g.path);
    if (!w) throw new LayerDamage(`${g.path} in ${label} is not in its record`);
    if (JSON.stringify(g) !== JSON.stringify(w))
      throw new LayerDamage(`${g.path} in ${label} differs from its record`);
    byPath.delete(g.path);
  }
  const missing = byPath.keys().next();
  if (!missing.done) throw new LayerDamage(`${missing.value} in ${label} is missing`);
}

/**
 * Checks `tree` against its seal: the fingerprint when it is unchanged (a walk of stats), else
 * a full rehash, after which an intact tree is sealed again with its new fingerprint.
 * `full` always rehashes (`nanocell sessions --verify`). Throws LayerDamage.
 */
export async function checkLayer(
  layout: StateLayout,
  tree: string,
  o: { label: string; full?: boolean },
): Promise<void> {
  const seal = loadSeal(layout, tree, o.label);
  let now: string;
  try {
    now = fingerprint(tree);
  } catch (e) {
    throw new LayerDamage(`${o.label}: ${(e as Error).message}`);
  }
  if (now === seal.fingerprint && !o.full) return;
  await rehash(tree, seal, o.label);
  if (now !== seal.fingerprint) {
    const { entries, ...head } = seal;
    writeSealed(layout, sealPath(tree), { ...head, fingerprint: now }, JSON.parse(entries));
  }
}
