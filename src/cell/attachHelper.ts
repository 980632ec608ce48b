// The warm cell's attach helper (native/attach.c --wait), started with the cell so that its
// claim costs no process start: spawning from a large supervisor is the slowest, least
// predictable step of a claim (milliseconds to tens of them on a loaded host). The helper holds
// a pidfd of the cell's init from the start and waits, blocked on its stdin, for the claim's
// arguments. A cell destroyed unclaimed ends the helper's stdin empty, and it exits doing
// nothing; a supervisor that dies ends it the same way.
import { spawn, type ChildProcess } from 'node:child_process';
import { nativeBinary } from '../host/native.js';
import { forkServerSpawn, ForkedProcess } from '../util/forkServer.js';

export class AttachHelper {
  private used = false;

  private constructor(
    private readonly p: ChildProcess | ForkedProcess,
    /** undefined on success, else the helper's one-line error. */
    private readonly done: Promise<string | undefined>,
  ) {}

  static async start(initPid: number): Promise<AttachHelper> {
    const bin = nativeBinary('nanocell-attach');
    const args = ['--pid', String(initPid), '--wait'];
    const forked = forkServerSpawn(bin, args, { stdio: 'pnp' });
    const p = forked
      ? new ForkedProcess(await forked)
      : spawn(bin, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    // An early exit (the cell already gone) must not throw EPIPE at the supervisor.
    p.stdin!.on('error', () => undefined);
    const done = new Promise<string | undefined>((resolve) => {
      p.once('error', (e) => resolve(e.message));
      p.once('close', (code, signal) =>
        resolve(code === 0 ? undefined : err.trim() || `exit ${code ?? signal}`),
      );
    });
    return new AttachHelper(p, done);
  }

  /** Sends the claim's arguments; resolves with the helper's error line, or undefined. */
  attach(args: string[]): Promise<string | undefined> {
    if (this.used) return Promise.resolve('the attach helper was already used');
    this.used = true;
    this.p.stdin!.end(args.map((a) => `${a}\0`).join(''));
    return this.done;
  }

  /** An unclaimed cell's end: the helper exits without acting. */
  async close(): Promise<void> {
    if (!this.used) {
      this.used = true;
      this.p.stdin!.end();
    }
    const t = setTimeout(() => this.p.kill('SIGKILL'), 2000);
    await this.done;
    clearTimeout(t);
  }
}
