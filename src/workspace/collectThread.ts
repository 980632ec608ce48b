// Worker-thread entry for collectChangeSetOffThread (collectWorker.ts): the same collector as
// the supervisor and the rootless child (collectMain.ts), answering once on the given port.
import { workerData } from 'node:worker_threads';
import { collectChangeSet } from './changeset.js';
import { toWireError, type CollectReply, type CollectThreadInput } from './collectWorker.js';

const { opts, port } = workerData as CollectThreadInput;
const send = (r: CollectReply) => {
  port.postMessage(r);
  port.close();
};
collectChangeSet(opts).then(
  (summary) => send({ ok: true, summary }),
  (e: unknown) => send({ ok: false, error: toWireError(e) }),
);
