// `node --import ./bench/register.mjs bench/run.ts` runs the TypeScript bench files directly,
// with the same transpiling hooks the tests use for their TypeScript child processes.
import { register } from 'node:module';

register('../test/integration/audit/helpers/tsHooks.mjs', import.meta.url);
