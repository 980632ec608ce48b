// Runs change-set collection on a worker thread. Collection is synchronous file I/O over up to
// the file and byte caps; on the supervisor's own thread a hostile change set would hold the
// event loop for seconds and starve the timers of every other cell this process runs.
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import {
  MessageChannel,
  receiveMessageOnPort,
  Worker,
  type MessagePort,
  type ResourceLimits,
} from 'node:worker_threads';
import { packageRoot } from '../util/packageRoot.js';
import { NanocellError, type ErrorKind } from '../util/errors.js';
import type { CollectOptions } from './changeset.js';
import type { ChangeSummary } from './manifest.js';
import { isMountPoint, unmountOverlay } from './overlay.js';

/** What the worker hands to collectThread: the options and the port for the one reply. */
export interface CollectThreadInput {
  opts: CollectOptions;
  port: MessagePort;
}

/** An error as it crosses the thread boundary; structured clone drops `fix` and `kind`. */
export interface WireError {
  name: string;
  message: string;
  fix?: string;
  kind?: ErrorKind;
  code?: string;
}

export type CollectReply = { ok: true; summary: ChangeSummary } | { ok: false; error: WireError };

export function toWireError(e: unknown): WireError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const w: WireError = { name: e.name, message: e.message };
  // Matched by name: the worker runs the compiled module, so its class is not the caller's.
  if (e.name === 'NanocellError') {
    const n = e as NanocellError;
    w.fix = n.fix;
    w.kind = n.kind;
  }
  const code = (e as NodeJS.ErrnoException).code;
  if (typeof code === 'string') w.code = code;
  return w;
}

export function fromWireError(w: WireError): Error {
  if (w.name === 'NanocellError') return new NanocellError(w.message, w.fix ?? '', w.kind);
  const e = new Error(w.message) as NodeJS.ErrnoException;
  e.name = w.name;
  if (w.code) e.code = w.code;
  return e;
}

/**
 * The worker's entry. Tests run the TypeScript sources, which a worker cannot load, so both
 * they and the installed package use the compiled file (the test setup builds dist first).
 */
function collectThreadFile(): string {
  return path.join(packageRoot(), 'dist', 'workspace', 'collectThread.js');
}

/**
 * Most tasks change a handful of files. Collecting those in-thread takes milliseconds, while a
 * worker's start-up (loading the collector's modules) takes 0.1 to 0.3 s, so only an upper
 * layer past these bounds goes to a worker.
 */
const IN_THREAD_MAX = { entries: 256, bytes: 4 * 1024 * 1024 };

/**
 * Whether the upper layer is within `max`. It stops at the first entry past a bound, so a
 * hostile upper layer costs at most `max.entries` lstat calls here. Nothing is followed.
 */
export function fitsInThread(upperDir: string, max = IN_THREAD_MAX): boolean {
  try {
    return within(upperDir, max);
  } catch {
    // A name Node cannot round-trip (not UTF-8) or a path past PATH_MAX: the worker's collector
    // judges it and records why.
    return false;
  }
}

function within(upperDir: string, max: typeof IN_THREAD_MAX): boolean {
  let entries = 0;
  let bytes = 0;
  const dirs = [upperDir];
  for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      if (++entries > max.entries) return false;
      const abs = path.join(dir, d.name);
      if (d.isDirectory()) dirs.push(abs);
      else if (d.isFile() && (bytes += lstatSync(abs).size) > max.bytes) return false;
    }
  }
  return true;
}

export interface OffThreadOptions {
  /** Aborting terminates the worker; the collection then fails and its partial output goes. */
  signal?: AbortSignal;
  /** Heap caps for the collector's thread (reaching one fails the collection). */
  resourceLimits?: ResourceLimits;
}

/**
 * collectChangeSet on a worker thread, with the same result and the same errors. A worker that
 * is killed or dies without answering is an error, never an empty change set; its partial
 * output (half-filled outDir, its own view mount) is removed.
 */
export function collectChangeSetOffThread(
  opts: CollectOptions,
  o: OffThreadOptions = {},
): Promise<ChangeSummary> {
  if (o.signal?.aborted) return Promise.reject(collectionAborted());
  // Only output this call created may be removed after a kill (the collector refuses an
  // existing outDir, and that refusal must not delete it).
  const outDirWasFree = !existsSync(opts.outDir) && !existsSync(`${opts.outDir}.view`);
  const { port1, port2 } = new MessageChannel();
  const input: CollectThreadInput = { opts, port: port2 };
  let worker: Worker;
  try {
    worker = new Worker(collectThreadFile(), {
      workerData: input,
      transferList: [port2],
      // The caller's flags (a test runner's loaders, an inspector) are not the collector's.
      execArgv: [],
      stdin: false,
      ...(o.resourceLimits ? { resourceLimits: o.resourceLimits } : {}),
    });
  } catch (e) {
    port1.close();
    return Promise.reject(workerFailed(e));
  }

  return new Promise<ChangeSummary>((resolve, reject) => {
    let reply: CollectReply | undefined;
    let failure: unknown;
    let killed = false;
    const onAbort = () => {
      killed = true;
      void worker.terminate();
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    port1.on('message', (m: CollectReply) => (reply ??= m));
    worker.on('error', (e) => (failure ??= e));
    worker.on('exit', (code) => {
      o.signal?.removeEventListener('abort', onAbort);
      // A reply posted just before the thread ended may still sit in the port.
      reply ??= receiveMessageOnPort(port1)?.message as CollectReply | undefined;
      port1.close();
      if (!killed && reply && isReply(reply)) {
        if (reply.ok) resolve(reply.summary);
        else reject(fromWireError(reply.error));
        return;
      }
      const error = (cleanupProblem?: string) =>
        killed
          ? collectionAborted(cleanupProblem)
          : workerFailed(failure ?? `exit code ${code}`, cleanupProblem);
      (outDirWasFree ? removePartial(opts.outDir) : Promise.resolve()).then(
        () => reject(error()),
        (e: unknown) => reject(error((e as Error).message)),
      );
    });
  });
}

function isReply(m: unknown): m is CollectReply {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Partial<{ ok: unknown; summary: unknown; error: unknown }>;
  if (r.ok === true) {
    const s = r.summary as Partial<ChangeSummary> | undefined;
    return typeof s === 'object' && s !== null && Array.isArray(s.changes);
  }
  if (r.ok !== false || typeof r.error !== 'object' || r.error === null) return false;
  return typeof (r.error as Partial<WireError>).message === 'string';
}

/** A kill mid-collection may leave the collector's own view mounted and a half-filled outDir. */
export async function removePartial(outDir: string): Promise<void> {
  const view = `${outDir}.view`;
  if (isMountPoint(view)) await unmountOverlay(view);
  await rm(view, { recursive: true, force: true });
  await rm(outDir, { recursive: true, force: true });
}

export function collectionAborted(cleanupProblem?: string): NanocellError {
  return new NanocellError(
    `collecting the change set was aborted; nothing was kept${
      cleanupProblem ? ` (cleanup failed: ${cleanupProblem})` : ''
    }`,
    cleanupProblem ? 'run `nanocell gc`' : 'run the task again to get its changes',
    'STATE',
  );
}

function workerFailed(cause: unknown, cleanupProblem?: string): NanocellError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new NanocellError(
    `the change-set collector stopped without a result (${why}); nothing was kept${
      cleanupProblem ? ` (cleanup failed: ${cleanupProblem})` : ''
    }`,
    cleanupProblem
      ? 'run `nanocell gc`, then report a bug'
      : 'check that nanocell is built (npm run build) and report a bug if it persists',
    'INTERNAL',
  );
}
