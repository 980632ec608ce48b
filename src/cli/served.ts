// `nanocell run` through a running `nanocell serve` when one listens on the state root's
// socket; in-process otherwise. The task is the same either way: the CLI resolves the policy,
// the server (same uid, checked) runs it and streams output, events and the report back.
import { stateLayout } from '../cell/state.js';
import { connectServer, runRemote } from '../server/client.js';
import { runTask, type TaskOptions, type TaskReport } from '../task/task.js';

export async function runTaskServedOrHere(
  o: TaskOptions & { stateRoot: string },
): Promise<TaskReport> {
  const s = await connectServer(stateLayout(o.stateRoot).serverSocket);
  if (!s) return runTask(o);
  return runRemote(
    s,
    {
      policy: o.policy,
      workspace: o.workspace,
      command: o.command,
      ...(o.session ? { session: o.session } : {}),
      ...(o.extraAllowNet ? { extraAllowNet: o.extraAllowNet } : {}),
      ...(o.changes ? { changes: o.changes } : {}),
      stdin: !!o.stdin,
    },
    {
      stdin: o.stdin ?? null,
      stdout: o.stdout,
      stderr: o.stderr,
      ...(o.onEvent ? { onEvent: o.onEvent } : {}),
      ...(o.abort ? { abort: o.abort } : {}),
      ...(o.abandonChanges ? { abandonChanges: o.abandonChanges } : {}),
    },
  );
}
