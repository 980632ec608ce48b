#!/usr/bin/env node
// The entry looks at the arguments before loading anything: `nanocell --version` (what tools
// call to detect nanocell) answers without loading the argument parser, and every other
// command loads the program, which loads only its verb's module (./verbs.ts).
import { VERSION } from './version.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${VERSION}\n`);
} else {
  const { main, reportError } = await import('./program.js');
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.exitCode = reportError(e);
    },
  );
}
