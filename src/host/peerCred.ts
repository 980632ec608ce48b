// Who is on the other end of a control connection. Node cannot read SO_PEERCRED, so the
// accepted socket is handed to the native helper as its fd 3 (the fd is duplicated into the
// child; the server has not read from it yet) and the helper prints what the kernel recorded
// at connect(): the connecting process's uid, gid and pid. Not as its stdin: libuv makes a
// child's fds 0-2 blocking, a flag of the open file the server shares, and a blocking socket
// stalls the server's whole loop on the first client that reads slowly. The socket's 0600 mode and its
// 0700 directory already keep other users out; this check holds even when they do not (a
// state root on a file system that ignores modes, a directory opened up by mistake).
import { spawn } from 'node:child_process';
import type net from 'node:net';
import { nativeBinary } from './native.js';

export interface PeerCredentials {
  uid: number;
  gid: number;
  pid: number;
}

const CHECK_TIMEOUT_MS = 5000;

export function peerCredentials(socket: net.Socket): Promise<PeerCredentials> {
  const helper = nativeBinary('nanocell-peercred');
  return new Promise((resolve, reject) => {
    const child = spawn(helper, [], { stdio: ['ignore', 'pipe', 'pipe', socket] });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d.slice(0, 256)));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d.slice(0, 512)));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHECK_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const m = /^(\d+) (\d+) (-?\d+)\n$/.exec(out);
      if (code !== 0 || !m) {
        reject(new Error(err.trim() || `nanocell-peercred exited with ${code}`));
        return;
      }
      resolve({ uid: Number(m[1]), gid: Number(m[2]), pid: Number(m[3]) });
    });
  });
}
