// Module hooks that let a plain `node` child process import the TypeScript sources directly
// (Node 20 cannot strip types and the repo has no TS runner): `.js` specifiers that name a `.ts`
// file resolve to it, and `.ts` files are transpiled by oxc through rolldown (already installed
// with vitest; it loads in a fraction of the time the TypeScript compiler takes, which matters
// when a test starts several processes on two cores).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath, URL } from 'node:url';
import { transform } from 'rolldown/experimental';

export async function resolve(specifier, context, next) {
  const local = /^(\.{1,2}\/|\/|file:)/.test(specifier);
  if (specifier.endsWith('.js') && local) {
    const url = new URL(specifier.replace(/\.js$/, '.ts'), context.parentURL);
    if (existsSync(fileURLToPath(url))) return { url: url.href, shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (!url.endsWith('.ts')) return next(url, context);
  const path = fileURLToPath(url);
  const out = await transform(path, await readFile(path, 'utf8'), {});
  if (out.errors.length > 0) {
    throw new Error(`cannot transpile ${path}: ${out.errors.map((e) => e.message).join('; ')}`);
  }
  return { format: 'module', source: out.code, shortCircuit: true };
}
