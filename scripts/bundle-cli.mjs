// Bundles the CLI into one file, dist/cli/nanocell.mjs (the `nanocell` bin).
// Why: every `nanocell run` pays Node's ESM loader for each module it imports, and the
// dependency tree (zod, commander, yaml, ...) is several hundred files. Resolving and
// linking them was most of the CLI's start-up (about 0.7 s against 0.3 s bundled).
// The library (dist/index.js) stays unbundled; helpers started as separate processes or
// workers keep their own files under dist/, found through packageRoot(), which finds the
// package root from dist/cli/ and dist/cli/chunks/ as from any other dist/ subdirectory.
// Code splitting: each verb's module is a dynamic import (src/cli/verbs.ts), so the entry holds
// only argument parsing and a verb loads its own chunk (and the chunks it shares) from
// dist/cli/chunks/; `nanocell --version` loads the entry alone.
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

/**
 * zod's `z` namespace re-exports every locale (`z.locales`), so none can be tree-shaken: half of
 * its 750 KB bundled, parsed by every command that reads a policy (about 15 ms). nanocell's
 * messages are English (zod's default, set by its own import of the `en` locale), so the
 * locales index is bundled as `en` alone.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({
      contents: 'export { default as en } from "./en.js";\n',
      loader: 'js',
      resolveDir: path.dirname(args.path),
    }));
  },
};

fs.rmSync('dist/cli/chunks', { recursive: true, force: true });
await build({
  entryPoints: { nanocell: 'dist/cli/main.js' },
  outdir: 'dist/cli',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // A native addon: it must load from node_modules at run time. The Kubernetes client is
  // large and loaded only by the Kubernetes commands (src/k8s/client.ts).
  external: ['better-sqlite3', '@kubernetes/client-node'],
  // Bundled CommonJS dependencies call require() on Node built-ins; ESM has no require.
  banner: {
    js: "import { createRequire as __nanocellRequire } from 'node:module'; const require = __nanocellRequire(import.meta.url);",
  },
  plugins: [zodEnglishOnly],
  logLevel: 'warning',
});

// The dashboard's page (`nanocell ui`): a browser bundle and its stylesheet, shipped in dist/ui
// (no CDN: every asset the page loads is one of these).
await build({
  entryPoints: ['ui/app.ts'],
  outfile: 'dist/ui/app.js',
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: 'chrome110',
  logLevel: 'warning',
});
fs.copyFileSync('ui/app.css', 'dist/ui/app.css');
