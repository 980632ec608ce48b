// The workspace crosses to the pod and back as tar streams (through init, like any command).
// Out: only what the scope shows the cell; hidden paths never leave the machine. Back: the
// stream comes from a pod the task controlled, so it is parsed as hostile input: relative
// clean paths only, no entry through a symlink, files, dirs and symlinks only, modes without
// setuid/setgid/sticky, and caps on entries and bytes. It lands in a fresh staging dir that
// the change-set collector then compares with the project, exactly as it compares an overlay.
import {
  constants,
  createReadStream,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  chmodSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { Readable } from 'node:stream';
import tar, { type ExtractEvents } from 'tar-stream';
import type { ScopePlan } from '../workspace/scope.js';
import { isSameOrBelow, relPathProblem } from '../workspace/paths.js';
import { NanocellError } from '../util/errors.js';
import { POD } from './constants.js';

/** A tar stream of what the cell may see of the project. */
export function packWorkspace(scope: ScopePlan): Readable {
  const pack = tar.pack();
  const hidden = [...scope.hidden, ...scope.hardlinkHidden];
  const isHidden = (rel: string) => hidden.some((h) => isSameOrBelow(rel, h));
  const owner = { uid: POD.uid, gid: POD.gid };
  const add = (header: Partial<tar.Header> & { name: string }, body?: Readable) =>
    new Promise<void>((resolve, reject) => {
      const entry = pack.entry(header as tar.Header, (err) => (err ? reject(err) : resolve()));
      if (body) body.on('error', reject).pipe(entry);
      else entry.end(Buffer.alloc(0));
    });
  const walk = async (dir: string): Promise<void> => {
    for (const name of readdirSync(dir ? `${scope.projectDir}/${dir}` : scope.projectDir).sort()) {
      const rel = dir ? `${dir}/${name}` : name;
      if (isHidden(rel)) continue;
      const abs = `${scope.projectDir}/${rel}`;
      const st = lstatSync(abs);
      const mode = st.mode & 0o777;
      if (st.isDirectory()) {
        await add({ name: rel, type: 'directory', mode, ...owner });
        await walk(rel);
      } else if (st.isFile()) {
        await add(
          { name: rel, type: 'file', size: st.size, mode, ...owner },
          createReadStream(abs),
        );
      } else if (st.isSymbolicLink()) {
        await add({
          name: rel,
          type: 'symlink',
          linkname: readlinkSync(abs),
          mode: 0o777,
          ...owner,
        });
      }
      // Devices, fifos and sockets are not part of a project: a local cell's overlay shows
      // them, but nothing in the pod could use them.
    }
  };
  walk('').then(
    () => pack.finalize(),
    (e: unknown) => pack.destroy(e as Error),
  );
  // streamx underneath; a Node stream for the exec channel.
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

export interface Unpacked {
  entries: number;
  bytes: number;
  /** Entries dropped because their type cannot come back (hard links, devices, fifos). */
  skipped: string[];
}

const refuse = (why: string) =>
  new NanocellError(
    `the workspace the pod sent back ${why}; nothing was kept`,
    'inspect the task: it may have tried to escape the workspace',
    'WORKSPACE',
  );

/** Extracts a tar stream from the pod into `dir` (created, must not exist). */
export function unpackWorkspace(
  stream: Readable,
  dir: string,
  limits: { maxFiles: number; maxBytes: number },
): Promise<Unpacked> {
  mkdirSync(dir, { mode: 0o700 });
  const extract = tar.extract();
  const result: Unpacked = { entries: 0, bytes: 0, skipped: [] };
  const dirModes: [string, number][] = [];

  return new Promise<Unpacked>((resolve, reject) => {
    extract.on('entry', (header, body, next) => {
      // Destroying the extractor errors the current entry too; the extractor reports it.
      body.on('error', () => undefined);
      const fail = (e: Error) => {
        body.resume();
        extract.destroy(e);
      };
      try {
        const rel = header.name.replace(/^\.\/+/, '').replace(/\/+$/, '');
        if (rel === '' || rel === '.') {
          body.resume();
          return next();
        }
        const problem = relPathProblem(rel);
        if (problem) return fail(refuse(`has a path that ${problem}`));
        if (++result.entries > limits.maxFiles)
          return fail(refuse(`holds more than ${limits.maxFiles} entries`));
        const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
        ensureRealDir(dir, parent);
        const abs = `${dir}/${rel}`;
        const mode = (header.mode ?? 0o644) & 0o777;
        if (header.type === 'directory') {
          const st = lstatSync(abs, { throwIfNoEntry: false });
          if (!st) mkdirSync(abs, { mode: 0o700 });
          else if (!st.isDirectory())
            return fail(refuse(`has ${rel} as both a directory and a file`));
          dirModes.push([abs, mode]);
          body.resume();
          return next();
        }
        if (header.type === 'symlink') {
          symlinkSync(header.linkname ?? '', abs);
          body.resume();
          return next();
        }
        if (header.type !== 'file' && header.type !== 'contiguous-file') {
          result.skipped.push(rel);
          body.resume();
          return next();
        }
        return writeFileEntry(abs, mode, body, {
          fail,
          next,
          count: (n) => {
            result.bytes += n;
            return result.bytes > limits.maxBytes
              ? refuse(`is larger than ${limits.maxBytes} bytes`)
              : undefined;
          },
        });
      } catch (e) {
        fail(
          e instanceof NanocellError
            ? e
            : refuse(`could not be unpacked (${(e as Error).message})`),
        );
      }
    });
    extract.once('finish', () => {
      // Modes last and deepest first, so a read-only directory did not block its children.
      for (const [abs, mode] of dirModes.reverse()) chmodSync(abs, mode);
      resolve(result);
    });
    // Listeners stay on: a destroyed stream may report its error more than once.
    extract.on('error', (e: Error) => {
      stream.destroy();
      reject(e);
    });
    stream.on('error', (e) => extract.destroy(e));
    stream.pipe(extract);
  });
}

/** Streams one regular file's body into `abs`; `count` refuses once a size cap is passed. */
function writeFileEntry(
  abs: string,
  mode: number,
  body: ExtractEvents['entry'][1],
  on: { count(bytes: number): Error | undefined; fail(e: Error): void; next(): void },
): void {
  // O_EXCL and O_NOFOLLOW: a name seen twice, or planted as a symlink, is an error.
  const fd = openSync(
    abs,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    mode,
  );
  body.on('data', (chunk: unknown) => {
    if (!Buffer.isBuffer(chunk)) return;
    const over = on.count(chunk.length);
    if (over) return on.fail(over);
    writeSync(fd, chunk);
  });
  body.once('end', () => {
    closeSync(fd);
    on.next();
  });
  body.once('error', (e) => {
    closeSync(fd);
    on.fail(e);
  });
}

/** Creates `rel` under `root` as real directories, refusing any existing non-directory. */
function ensureRealDir(root: string, rel: string): void {
  if (!rel) return;
  let cur = root;
  for (const part of rel.split('/')) {
    cur = `${cur}/${part}`;
    const st = lstatSync(cur, { throwIfNoEntry: false });
    if (!st) mkdirSync(cur, { mode: 0o700 });
    else if (!st.isDirectory()) {
      throw new NanocellError(
        `the workspace the pod sent back puts an entry below ${rel}, which is not a directory; nothing was kept`,
        'inspect the task: it may have tried to escape the workspace',
        'WORKSPACE',
      );
    }
  }
}
