// The cell's /etc: generated identity files plus an allowlist of harmless host files.
// Nothing here is secret: no shadow, no ssh, no machine-id, no ssl/private.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { lexists } from '../util/fs.js';
import path from 'node:path';
import { CELL_GID, CELL_HOME, CELL_UID } from '../plan/layout.js';

/** Files nanocell writes itself; the content is the same for every cell. */
function generatedEtcFiles(): Record<string, string> {
  return {
    passwd: [
      'root:x:0:0:root:/nonexistent:/usr/sbin/nologin',
      `cell:x:${CELL_UID}:${CELL_GID}:nanocell task:${CELL_HOME}:/bin/bash`,
      'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
      '',
    ].join('\n'),
    group: ['root:x:0:', 'tty:x:5:', `cell:x:${CELL_GID}:`, 'nogroup:x:65534:', ''].join('\n'),
    hosts: '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n',
    hostname: 'cell\n',
    // The cell's DNS stub (src/net/dnsStub.ts) answers on its loopback: allowed names get fake
    // addresses, the proxy resolves them for real. A cell without the stub (networking off,
    // runsc) has nothing listening there, and a lookup fails at once.
    'resolv.conf':
      "# nanocell: DNS is the cell's stub; allowed names get addresses the proxy maps back\nnameserver 127.0.0.1\noptions timeout:1 attempts:2\n",
    'nsswitch.conf': [
      'passwd: files',
      'group: files',
      'shadow: files',
      'hosts: files dns',
      'networks: files',
      'protocols: files',
      'services: files',
      'ethers: files',
      'rpc: files',
      '',
    ].join('\n'),
    shells: '/bin/sh\n/bin/bash\n/usr/bin/sh\n/usr/bin/bash\n',
  };
}

/**
 * Host entries copied as they are. Each is needed by common programs: the dynamic loader's
 * cache, Debian's alternatives symlinks (awk, editor, ...), CA certificates, time zone,
 * interpreters' site configuration.
 */
const HOST_ETC_ALLOWLIST: readonly string[] = [
  'alternatives',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'ssl/certs',
  'ssl/openssl.cnf',
  'ca-certificates',
  'localtime',
  'timezone',
  'mime.types',
  'protocols',
  'services',
  'os-release',
  'debian_version',
  'lsb-release',
  'inputrc',
  'bash.bashrc',
  'profile',
  'magic',
  'perl',
  'python3',
  'python3.11',
  'python3.12',
  'gitconfig',
];

const HOST_ETC = '/etc';
const MAX_COPY_BYTES = 16 * 1024 * 1024;

/**
 * Builds (once per content hash) a shared read-only /etc under `etcRoot` and returns its path.
 * Concurrent builders race harmlessly: each builds in a private temp dir and renames it.
 */
export function ensureEtcDir(etcRoot: string): string {
  const sources = HOST_ETC_ALLOWLIST.map((rel) => path.join(HOST_ETC, rel)).filter((p) =>
    lexists(p),
  );
  const hash = createHash('sha256');
  for (const [name, body] of Object.entries(generatedEtcFiles())) hash.update(`${name}\0${body}\0`);
  for (const src of sources) {
    const st = fs.lstatSync(src);
    hash.update(`${src}\0${st.mtimeMs}\0${st.size}\0`);
  }
  const dir = path.join(etcRoot, hash.digest('hex').slice(0, 16));
  if (fs.existsSync(dir)) return dir;

  fs.mkdirSync(etcRoot, { recursive: true, mode: 0o755 });
  const tmp = fs.mkdtempSync(path.join(etcRoot, '.build-'));
  try {
    fs.chmodSync(tmp, 0o755);
    for (const [name, body] of Object.entries(generatedEtcFiles())) {
      fs.writeFileSync(path.join(tmp, name), body, { mode: 0o644 });
    }
    const budget = { bytes: MAX_COPY_BYTES };
    for (const src of sources) copyEntry(src, path.join(tmp, path.relative(HOST_ETC, src)), budget);
    try {
      fs.renameSync(tmp, dir);
    } catch (e) {
      if (!fs.existsSync(dir)) throw e;
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return dir;
}

/** Copies regular files, dirs and symlinks (as symlinks); skips anything private or special. */
function copyEntry(src: string, dst: string, budget: { bytes: number }): void {
  const st = fs.lstatSync(src);
  fs.mkdirSync(path.dirname(dst), { recursive: true, mode: 0o755 });
  if (st.isSymbolicLink()) {
    fs.symlinkSync(fs.readlinkSync(src), dst);
  } else if (st.isDirectory()) {
    fs.mkdirSync(dst, { mode: 0o755 });
    for (const name of fs.readdirSync(src))
      copyEntry(path.join(src, name), path.join(dst, name), budget);
  } else if (st.isFile() && (st.mode & 0o004) !== 0) {
    // Only world-readable files: anything the host restricts is not for a cell.
    budget.bytes -= st.size;
    if (budget.bytes < 0) return;
    fs.copyFileSync(src, dst);
    fs.chmodSync(dst, 0o644);
  }
}
