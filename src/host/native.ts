// Locates the native helpers built at install time (native/build), or an override dir.
import fs from 'node:fs';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import { nativeDir } from '../util/packageRoot.js';

export type NativeHelper =
  | 'nanocell-init'
  | 'nanocell-monitor'
  | 'nanocell-idmap'
  | 'nanocell-peercred'
  | 'nanocell-attach'
  | 'nanocell-forkserver';

export function nativeBinary(name: NativeHelper): string {
  const p = path.join(nativeDir(), name);
  try {
    fs.accessSync(p, fs.constants.X_OK);
  } catch {
    throw new NanocellError(
      `native helper ${p} is missing`,
      'build it with `make -C native` (the setup script does this)',
      'HOST',
    );
  }
  return p;
}
