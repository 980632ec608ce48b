// `nanocell run` through a running `nanocell serve` when one listens on the state root's
// socket; in-process otherwise. The task is the same either way: the CLI resolves the policy,
// the server (same uid, checked) runs it and streams output, events and the report back.
import type { AuditEventInput } from '../audit/events.js';
import { NanocellError } from '../util/errors.js';
import { stateLayout } from '../cell/state.js';
import { ServerConnection } from '../cell/remote/client.js';
import type { TaskOptions, TaskReport } from '../task/task.js';
import { whichCell } from '../task/args/runInputs.js';

/** A connection to the server, or undefined when none is listening (or NANOCELL_NO_SERVER). */
export function connectServer(socketPath: string): Promise<ServerConnection | undefined> {
  if (process.env.NANOCELL_NO_SERVER) return Promise.resolve(undefined);
  return ServerConnection.open(socketPath);
}

export async function runTaskServedOrHere(
  o: TaskOptions & { stateRoot: string; say?: (line: string) => void },
): Promise<TaskReport> {
  const socket = stateLayout(o.stateRoot).serverSocket;
  const c = await connectServer(socket);
  if (!c) {
    o.say?.(
      process.env.NANOCELL_NO_SERVER
        ? 'running in this process (NANOCELL_NO_SERVER is set)'
        : `running in this process (no nanocell serve listens on ${socket})`,
    );
    // Loaded only here: the task library is most of the CLI, and a served run needs none of it.
    const { runTask } = await import('../task/task.js');
    return runTask(o);
  }
  try {
    o.say?.(`running through nanocell serve on ${socket}`);
    if (o.stack) {
      throw new NanocellError(
        'run --from is not carried to a nanocell serve server yet',
        'stop the server for this state root, or run the task without --from',
        'USAGE',
      );
    }
    return await runRemote(c, o);
  } finally {
    c.close();
  }
}

function runRemote(
  c: ServerConnection,
  o: TaskOptions & { say?: (line: string) => void },
): Promise<TaskReport> {
  const task = {
    policy: o.policy,
    workspace: o.workspace,
    command: o.command,
    ...(o.session ? { session: o.session } : {}),
    ...(o.extraAllowNet ? { extraAllowNet: o.extraAllowNet } : {}),
    ...(o.changes ? { changes: o.changes } : {}),
    stdin: !!o.stdin,
  };
  const { id, result } = c.request<TaskReport>('run', { task }, (m) => {
    if (m.type === 'stdout') o.stdout.write(Buffer.from(m.data, 'base64'));
    else if (m.type === 'stderr') o.stderr.write(Buffer.from(m.data, 'base64'));
    else if (m.type === 'event') o.onEvent?.(m.event as unknown as AuditEventInput);
    else if (m.type === 'cell') {
      const cell = { id: m.cell, ...(m.warmPool ? { warmPool: m.warmPool } : {}) };
      if (o.onCell) o.onCell(cell);
      else o.say?.(whichCell(cell));
    }
  });
  const cancel = () => c.input(id, 'cancel');
  o.abort?.addEventListener('abort', cancel);
  o.abandonChanges?.addEventListener('abort', cancel);
  if (o.stdin) {
    o.stdin.on('data', (d: Buffer) => c.input(id, 'stdin', { data: d.toString('base64') }));
    o.stdin.on('end', () => c.input(id, 'stdin', { end: true }));
  }
  return result.finally(() => {
    o.abort?.removeEventListener('abort', cancel);
    o.abandonChanges?.removeEventListener('abort', cancel);
  });
}
