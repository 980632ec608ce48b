// `node --import <this file> child.ts` runs a TypeScript child (see tsHooks.mjs).
import { register } from 'node:module';

register('./tsHooks.mjs', import.meta.url);
