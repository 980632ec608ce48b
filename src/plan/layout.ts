// The cell's own layout: who the task is, where nanocell's files sit inside the cell, and
// which paths a workspace may not take. Shared by the planner, the workspace and /etc.
import path from 'node:path';
import type { HostFacts } from '../host/facts.js';
import { NanocellError } from '../util/errors.js';

/** Inside the cell the task runs as this unprivileged user. */
export const CELL_UID = 1000;
export const CELL_GID = 1000;
export const CELL_HOME = '/home/cell';
/** nanocell's own files inside the cell: init and the proxy socket. Read-only. */
const CELL_RUNTIME_DIR = '/.nanocell';
export const CELL_INIT = `${CELL_RUNTIME_DIR}/init`;
export const CELL_PROXY_SOCKET = `${CELL_RUNTIME_DIR}/proxy.sock`;
/**
 * Loopback port inside the cell where the egress proxy listens. The monitor makes the socket in
 * the cell's network namespace and hands it to the supervisor; only without a seccomp
 * listener (gVisor, or seccomp off for a benchmark) does init bridge it to a unix socket.
 */
export const CELL_PROXY_PORT = 3128;

/** Paths that a workspace may not be, contain or sit under: the cell's own system layout. */
const RESERVED_CELL_PATHS = ['/usr', '/etc', '/proc', '/dev', '/sys', CELL_HOME, CELL_RUNTIME_DIR];
/**
 * The cell's /tmp is its own tmpfs, so a workspace may sit under it (agent harnesses make
 * projects with mkdtemp): the workspace is mounted after the tmpfs, on a mount point inside
 * it, and the rest of the host's /tmp never appears. A workspace may not be /tmp itself or
 * contain it, and host mounts stay out of it.
 */
const CELL_TMP = '/tmp';
const RESERVED_TOP = ['/bin', '/lib', '/lib32', '/lib64', '/libx32', '/sbin', '/run', '/var/run'];

/** The task's identity inside the cell (see planIdMappings for why rootless differs). */
export function cellUser(host: HostFacts): { uid: number; gid: number } {
  return host.rootless ? { uid: 0, gid: 0 } : { uid: CELL_UID, gid: CELL_GID };
}

/** Rejects a workspace whose cell path would shadow or sit inside the cell's system layout. */
export function checkWorkspacePath(p: string): void {
  if (!path.isAbsolute(p) || path.normalize(p) !== p || p === '/') {
    throw new NanocellError(
      `workspace ${p} must be an absolute, normalised directory other than /`,
      'pass a project directory with --workspace',
      'WORKSPACE',
    );
  }
  const r = p.startsWith(`${CELL_TMP}/`) ? undefined : reservedOverlap(p);
  if (r) {
    throw new NanocellError(
      `workspace ${p} overlaps ${r}, which the cell reserves for its own system files`,
      'move the project to a directory such as /srv/project or your home directory',
      'WORKSPACE',
    );
  }
}

/** The reserved cell path that `p` is, sits under or contains; undefined when none. */
export function reservedOverlap(p: string): string | undefined {
  return [...RESERVED_CELL_PATHS, CELL_TMP, ...RESERVED_TOP].find(
    (r) => p === r || p.startsWith(`${r}/`) || r.startsWith(`${p}/`),
  );
}
