// Entry point for collecting a rootless cell's change set. An unprivileged supervisor cannot
// mount the read-only view of upper over lower that collection reads, so it runs this in a
// child user and mount namespace of its own (`unshare -Urm`), where it may.
import { collectChangeSet, type CollectOptions } from './changeset.js';
import { toWireError } from './collectWorker.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as CollectOptions;
collectChangeSet(opts).then(
  (summary) => process.stdout.write(JSON.stringify(summary)),
  (e: unknown) => {
    // Last stderr line: the error as JSON, so the supervisor keeps its fix and kind.
    process.stderr.write(`\n${JSON.stringify({ collectError: toWireError(e) })}\n`);
    process.exitCode = 1;
  },
);
