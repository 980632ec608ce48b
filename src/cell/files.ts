// `cell.files`: the workspace as the cell sees it, read and written from the supervisor
// without starting a process in the cell. Every path goes through the cell's own mount tree
// (/proc/<init>/root), so excluded secrets stay whited out and protected paths read-only,
// exactly as for the task.
//
// Path lookup emulates openat2(RESOLVE_BENEATH): each component is looked up alone in a
// directory we hold open (/proc/self/fd/<fd>/<name>, opened O_NOFOLLOW), symlinks are read
// and resolved by us inside the workspace, and `..` pops a held directory. The kernel never
// follows a link the cell controls, so a task that swaps a directory for a symlink mid-walk
// (to the host's /etc, say: an absolute link below /proc/<pid>/root resolves against OUR
// root) makes the call fail, never escape.
import fs from 'node:fs';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const MAX_LINK_HOPS = 40;
const DEFAULT_READ_CAP = 16 * 1024 * 1024;
const DEFAULT_LIST_CAP = 10_000;

type FileType = 'file' | 'dir' | 'symlink' | 'other';

export interface FileStat {
  /** The path relative to the workspace root ('' for the root). */
  path: string;
  type: FileType;
  size: number;
  mode: number;
  mtimeMs: number;
}

export interface FileEntry {
  name: string;
  type: FileType;
  size: number;
}

export interface ReadResult {
  content: Buffer;
  /** Bytes in the file; more than content.length when the read was capped. */
  size: number;
  truncated: boolean;
}

/** What the cell gives its files API while it runs; it throws once the cell has ended. */
export interface FilesView {
  /** The cell's root as the host reaches it, e.g. /proc/<init pid>/root. */
  root: string;
  /** The workspace's absolute path inside the cell. */
  cellPath: string;
  /** Host uid/gid that the cell user's new files get (root mode); rootless writes as itself. */
  owner?: { uid: number; gid: number };
}

const fdPath = (fd: number, name?: string) =>
  name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;

function typeOf(st: fs.Stats): FileType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

function outside(p: string): NanocellError {
  return new NanocellError(
    `${JSON.stringify(p)} is outside the cell's workspace`,
    'pass a path relative to the workspace, or an absolute path below it',
    'WORKSPACE',
  );
}

/** A walk's result: the directory holding the last component, and that component. */
interface Located {
  dirFd: number;
  /** undefined when the path is the workspace root itself. */
  name: string | undefined;
  rel: string;
}

export class CellFiles {
  constructor(private readonly view: () => FilesView) {}

  async stat(p: string): Promise<FileStat> {
    return this.at(p, false, (v, loc) => {
      const st = loc.name === undefined ? fs.fstatSync(loc.dirFd) : lstat(loc, p);
      return {
        path: loc.rel,
        type: typeOf(st),
        size: st.size,
        mode: st.mode & 0o7777,
        mtimeMs: st.mtimeMs,
      };
    });
  }

  async read(p: string, o: { maxBytes?: number } = {}): Promise<ReadResult> {
    const cap = o.maxBytes ?? DEFAULT_READ_CAP;
    return this.at(p, true, (_v, loc) => {
      const fd = openIn(loc, p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      try {
        const st = fs.fstatSync(fd);
        if (!st.isFile()) throw notA(p, 'regular file');
        const buf = Buffer.alloc(Math.min(st.size, cap));
        let got = 0;
        while (got < buf.length) {
          const n = fs.readSync(fd, buf, got, buf.length - got, got);
          if (n === 0) break;
          got += n;
        }
        return { content: buf.subarray(0, got), size: st.size, truncated: st.size > got };
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  /** Creates or replaces a regular file; `parents` creates missing directories first. */
  async write(p: string, data: string | Buffer, o: { parents?: boolean } = {}): Promise<void> {
    if (o.parents && path.posix.dirname(p) !== p)
      await this.mkdir(path.posix.dirname(p), { parents: true });
    return this.at(p, true, (v, loc) => {
      let fd: number;
      try {
        fd = openIn(loc, p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
        if (v.owner) fs.fchownSync(fd, v.owner.uid, v.owner.gid);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        fd = openIn(loc, p, O_WRONLY | O_NOFOLLOW | O_NONBLOCK);
      }
      try {
        if (!fs.fstatSync(fd).isFile()) throw notA(p, 'regular file');
        fs.ftruncateSync(fd, 0);
        const buf = typeof data === 'string' ? Buffer.from(data) : data;
        for (let off = 0; off < buf.length;)
          off += fs.writeSync(fd, buf, off, buf.length - off, off);
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  async list(
    p = '',
    o: { maxEntries?: number } = {},
  ): Promise<{ entries: FileEntry[]; truncated: boolean }> {
    const cap = o.maxEntries ?? DEFAULT_LIST_CAP;
    return this.at(p, true, (_v, loc) => {
      const fd =
        loc.name === undefined
          ? fs.openSync(fdPath(loc.dirFd), O_RDONLY | O_DIRECTORY)
          : openIn(loc, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      try {
        const names = fs.readdirSync(fdPath(fd)).sort();
        const entries: FileEntry[] = [];
        for (const name of names.slice(0, cap)) {
          const st = fs.lstatSync(fdPath(fd, name), { throwIfNoEntry: false });
          if (st) entries.push({ name, type: typeOf(st), size: st.size });
        }
        return { entries, truncated: names.length > cap };
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  async mkdir(p: string, o: { parents?: boolean } = {}): Promise<void> {
    const rel = this.relOf(p, this.view().cellPath);
    const parts = rel === '' ? [] : rel.split('/');
    const upto = o.parents ? parts.map((_, i) => parts.slice(0, i + 1).join('/')) : [rel];
    for (const q of upto) {
      if (q === '') continue;
      this.at(q, false, (v, loc) => {
        if (loc.name === undefined) return;
        const st = fs.lstatSync(fdPath(loc.dirFd, loc.name), { throwIfNoEntry: false });
        if (st?.isDirectory() && o.parents) return;
        if (st?.isSymbolicLink() && o.parents) return; // the walk of the next part resolves it
        fs.mkdirSync(fdPath(loc.dirFd, loc.name), 0o755);
        if (v.owner) fs.lchownSync(fdPath(loc.dirFd, loc.name), v.owner.uid, v.owner.gid);
      });
    }
  }

  /** Removes a file, a symlink (not its target) or, with `recursive`, a directory tree. */
  async remove(p: string, o: { recursive?: boolean } = {}): Promise<void> {
    return this.at(p, false, (_v, loc) => {
      if (loc.name === undefined)
        throw new NanocellError(
          'refusing to remove the workspace root',
          'remove what is inside it',
          'USAGE',
        );
      const st = lstat(loc, p);
      if (!st.isDirectory()) return fs.unlinkSync(fdPath(loc.dirFd, loc.name));
      if (o.recursive) {
        const fd = openIn(loc, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        try {
          emptyDir(fd);
        } finally {
          fs.closeSync(fd);
        }
      }
      fs.rmdirSync(fdPath(loc.dirFd, loc.name));
    });
  }

  /** A path the caller gave, as a workspace-relative path (lexically; `..` may not leave it). */
  private relOf(p: string, cellPath: string): string {
    let rel: string;
    if (path.posix.isAbsolute(p)) {
      const n = path.posix.normalize(p).replace(/\/+$/, '') || '/';
      if (n === cellPath) return '';
      if (!n.startsWith(`${cellPath}/`)) throw outside(p);
      rel = n.slice(cellPath.length + 1);
    } else rel = p;
    const out: string[] = [];
    for (const c of rel.split('/')) {
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (out.length === 0) throw outside(p);
        out.pop();
      } else out.push(c);
    }
    return out.join('/');
  }

  /** Walks to `p` beneath the workspace and runs `fn` with the located entry. */
  private at<T>(p: string, followFinal: boolean, fn: (v: FilesView, loc: Located) => T): T {
    if (p.includes('\0'))
      throw new NanocellError('a path contains a NUL byte', 'pass a plain path', 'USAGE');
    const v = this.view();
    const rel = this.relOf(p, v.cellPath);
    let rootFd: number;
    try {
      rootFd = fs.openSync(`${v.root}${v.cellPath}`, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    } catch (e) {
      throw new NanocellError(
        `cannot open the cell's workspace: ${(e as Error).message}`,
        'the cell must be running; create a new one',
        'STATE',
      );
    }
    const held = [rootFd];
    try {
      return withErrno(p, () => fn(v, walk(held, rel, followFinal, v.cellPath, p)));
    } finally {
      for (const fd of held) fs.closeSync(fd);
    }
  }
}

/**
 * The RESOLVE_BENEATH walk. `held` starts as [root fd]; it is the stack of directories the
 * walk is in, and the caller closes whatever is left on it.
 */
function walk(
  held: number[],
  rel: string,
  followFinal: boolean,
  cellPath: string,
  asked: string,
): Located {
  const todo = rel === '' ? [] : rel.split('/');
  const done: string[] = [];
  let hops = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (held.length === 1) throw outside(asked);
      fs.closeSync(held.pop()!);
      done.pop();
      continue;
    }
    const top = held[held.length - 1]!;
    const last = todo.every((t) => t === '' || t === '.');
    const st = fs.lstatSync(fdPath(top, c), { throwIfNoEntry: false });
    if (st?.isSymbolicLink() && (!last || followFinal)) {
      if (++hops > MAX_LINK_HOPS)
        throw new NanocellError(
          `${JSON.stringify(asked)}: too many symlinks`,
          'pass a path without a symlink loop',
          'WORKSPACE',
        );
      const target = fs.readlinkSync(fdPath(top, c));
      if (path.posix.isAbsolute(target)) {
        // An absolute link means the cell's root: it must point into the workspace.
        const n = path.posix.normalize(target);
        if (n !== cellPath && !n.startsWith(`${cellPath}/`)) throw outside(asked);
        while (held.length > 1) fs.closeSync(held.pop()!);
        done.length = 0;
        todo.unshift(...n.slice(cellPath.length).split('/'));
      } else todo.unshift(...target.split('/'));
      continue;
    }
    if (last) return { dirFd: top, name: c, rel: [...done, c].join('/') };
    if (!st) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    if (!st.isDirectory()) throw Object.assign(new Error('ENOTDIR'), { code: 'ENOTDIR' });
    // O_NOFOLLOW: a symlink swapped in since the lstat fails here rather than being followed.
    held.push(fs.openSync(fdPath(top, c), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    done.push(c);
  }
  return { dirFd: held[held.length - 1]!, name: undefined, rel: done.join('/') };
}

function openIn(loc: Located, asked: string, flags: number, mode?: number): number {
  if (loc.name === undefined) throw notA(asked, 'regular file');
  return fs.openSync(fdPath(loc.dirFd, loc.name), flags, mode);
}

function lstat(loc: Located, asked: string): fs.Stats {
  const st = fs.lstatSync(fdPath(loc.dirFd, loc.name), { throwIfNoEntry: false });
  if (!st) throw noSuch(asked);
  return st;
}

/** Removes everything in the directory `fd`, one component at a time from held fds. */
function emptyDir(fd: number): void {
  for (const name of fs.readdirSync(fdPath(fd))) {
    const st = fs.lstatSync(fdPath(fd, name), { throwIfNoEntry: false });
    if (!st) continue;
    if (!st.isDirectory()) {
      fs.unlinkSync(fdPath(fd, name));
      continue;
    }
    const sub = fs.openSync(fdPath(fd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    try {
      emptyDir(sub);
    } finally {
      fs.closeSync(sub);
    }
    fs.rmdirSync(fdPath(fd, name));
  }
}

function noSuch(p: string): NanocellError {
  return new NanocellError(
    `no such file or directory in the cell's workspace: ${JSON.stringify(p)}`,
    'check the path (cell.files.list shows what is there)',
    'WORKSPACE',
  );
}

function notA(p: string, what: string): NanocellError {
  return new NanocellError(
    `${JSON.stringify(p)} is not a ${what}`,
    `pass the path of a ${what}`,
    'WORKSPACE',
  );
}

/** System errors of a files call as one-line NanocellErrors naming the path. */
function withErrno<T>(p: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof NanocellError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw noSuch(p);
    if (code === 'ENOTDIR') throw notA(path.posix.dirname(p), 'directory');
    if (code === 'ELOOP')
      throw new NanocellError(
        `${JSON.stringify(p)} became a symlink during the call`,
        'retry; nanocell does not follow links the cell changes under it',
        'WORKSPACE',
      );
    if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM')
      throw new NanocellError(
        `${JSON.stringify(p)} is read-only in the cell (${code})`,
        'write only where the policy lets the task write',
        'WORKSPACE',
      );
    if (code === 'EEXIST')
      throw new NanocellError(
        `${JSON.stringify(p)} already exists`,
        'remove it first, or pass parents: true for a directory',
        'WORKSPACE',
      );
    if (code === 'ENOTEMPTY')
      throw new NanocellError(
        `${JSON.stringify(p)} is a directory that is not empty`,
        'pass recursive: true',
        'WORKSPACE',
      );
    if (code === 'EISDIR') throw notA(p, 'regular file');
    throw e;
  }
}
