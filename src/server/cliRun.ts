// `nanocell run` for the native front (native/front/), which starts in a millisecond where the
// node CLI takes most of a tenth of a second. The front sends what was typed (the arguments
// after `run`, the cwd, the environment) and relays bytes; everything the CLI decides is
// decided here by the CLI's own code (src/task/args/runInputs.ts): the flags, the policy they
// make, the closing notes, the exit status. A run the front cannot carry (a terminal, --from, the
// Kubernetes backend, --help, a flag the parser refuses) is handed back before anything acts,
// and the front runs the node CLI with the same arguments, which then says what it says.
//
// The reply is binary frames on the connection: one byte of kind, a 32-bit big-endian length,
// the payload. The front then sends only `stdin` and `cancel` inputs (JSON lines, id of the
// runCli) and reads until `exit`.
import { Command, CommanderError } from 'commander';
import { NanocellError } from '../util/errors.js';
import { stateLayout } from '../cell/state.js';
import { addK8sRunOptions, type K8sRunOpts } from '../task/args/k8sOptions.js';
import {
  changesFlag,
  outcomeLines,
  runExitCode,
  runInputs,
  runOptions,
  whichCell,
  writeReport,
  type RunOpts,
} from '../task/args/runInputs.js';
import type { TaskReport } from '../task/task.js';
import type { Policy } from '../policy/defaults.js';
import type { Conn } from './conn.js';
import type { Request } from './requests.js';
import type { CellServerState } from './server.js';
import { runStream } from './streams.js';

/** The kinds of a runCli reply's frames (docs/architecture.md, "The native front"). */
const CLI_FRAME = {
  /** Bytes of the task's stdout. */
  stdout: 0x6f,
  /** Bytes for the front's stderr: the task's, and nanocell's own notes. */
  stderr: 0x65,
  /** The run's exit status, one byte; the last frame. */
  exit: 0x78,
  /** Not carried here: run the node CLI with the same arguments (payload: why, for --verbose). */
  fallback: 0x66,
  /** The server carries this run: the front reads its stdin from here on. The first frame. */
  started: 0x73,
} as const;

const EXIT_NANOCELL_ERROR = 125;

function frame(kind: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const head = Buffer.alloc(5);
  head[0] = kind;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

type Parsed = { command: string[]; opts: RunOpts & K8sRunOpts } | { fallback: string };

/** The arguments as the CLI's `run` reads them, or why the node CLI should read them itself. */
function parseRunArgs(args: string[]): Parsed {
  let got: { command: string[]; opts: RunOpts & K8sRunOpts } | undefined;
  const silent = () => undefined;
  const cmd = runOptions(
    addK8sRunOptions(new Command('run'))
      .argument('<command...>')
      .passThroughOptions()
      .exitOverride()
      .configureOutput({ writeOut: silent, writeErr: silent, outputError: silent }),
  ).action((command: string[], opts: RunOpts & K8sRunOpts) => {
    got = { command, opts };
  });
  try {
    cmd.parse(args, { from: 'user' });
  } catch (e) {
    // Help, a bad flag: the node CLI prints them as it always does.
    if (e instanceof CommanderError) return { fallback: 'the arguments are for the node CLI' };
    throw e;
  }
  if (!got) return { fallback: 'no command' };
  const { opts } = got;
  if (opts.backend === 'k8s') return { fallback: '--backend k8s runs from the node CLI' };
  if (opts.tty) return { fallback: '--tty needs the node CLI (the terminal is its)' };
  if (opts.from) return { fallback: '--from runs from the node CLI' };
  return got;
}

/** Serves a connection whose first request is runCli, to the end of its task. */
export async function serveCliRun(
  conn: Conn,
  r: Request<'runCli'>,
  server: CellServerState,
): Promise<void> {
  const send = (kind: number, payload?: Buffer | string) => conn.sendRaw(frame(kind, payload));
  const note = (line: string) => send(CLI_FRAME.stderr, `nanocell: ${line}\n`);
  let code: number;
  try {
    const parsed = parseRunArgs(r.args);
    if ('fallback' in parsed) {
      const verbose = r.args.includes('--verbose');
      send(CLI_FRAME.fallback, verbose ? `nanocell: ${parsed.fallback}\n` : '');
      conn.socket.end();
      return;
    }
    send(CLI_FRAME.started);
    code = await runParsed(conn, r, server, parsed, note);
  } catch (e) {
    code = EXIT_NANOCELL_ERROR;
    note(
      e instanceof NanocellError
        ? e.oneLine()
        : `internal error: ${(e as Error)?.message ?? String(e)} (fix: please report this bug)`,
    );
  }
  send(CLI_FRAME.exit, Buffer.from([code & 0xff]));
  conn.socket.end();
}

async function runParsed(
  conn: Conn,
  r: Request<'runCli'>,
  server: CellServerState,
  { command, opts }: { command: string[]; opts: RunOpts },
  note: (line: string) => boolean,
): Promise<number> {
  const { policy, workspace, reportPath } = runInputs(opts, { cwd: r.cwd, env: r.env });
  const pool = server.pools?.find(policy, workspace);
  server.log?.(
    `run (native front) for pid ${conn.peer.pid}: ${JSON.stringify(command)}${pool ? ` (warm pool "${pool.name}")` : ''}`,
  );
  const socket = stateLayout(server.stateRoot).serverSocket;
  if (opts.verbose) note(`running through nanocell serve on ${socket} (native front)`);
  let report: TaskReport;
  try {
    report = await runStream(
      conn,
      r.id,
      {
        policy: policy as Policy,
        workspace,
        command,
        ...(opts.session ? { session: opts.session } : {}),
        ...(opts.allowNet ? { extraAllowNet: opts.allowNet } : {}),
        changes: changesFlag(opts),
        // The front is used only when stdin is not a terminal; the CLI then passes it.
        stdin: true,
      },
      { ...server, startCell: server.pools?.starter(pool) },
      {
        output: (type, chunk) =>
          conn.sendRaw(frame(type === 'stdout' ? CLI_FRAME.stdout : CLI_FRAME.stderr, chunk)),
        cell: (c) => (opts.verbose ? note(whichCell(c)) : true),
        abandoned: () => note('giving up the change set; nothing of it is kept'),
      },
    );
  } catch (e) {
    const partial = (e as { report?: TaskReport }).report;
    if (partial && reportPath) writeReport(reportPath, partial);
    throw e;
  }
  if (reportPath) writeReport(reportPath, report);
  for (const line of outcomeLines(report, command, workspace, !!opts.quiet))
    conn.sendRaw(frame(CLI_FRAME.stderr, line));
  return runExitCode(report, opts);
}
