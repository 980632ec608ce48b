// Who is on the other end of an accepted unix socket, as the kernel saw it at connect
// (SO_PEERCRED). Node has no getsockopt, so the small native helper reads it from a dup of
// the socket and prints "pid uid gid".
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { nativeBinary } from '../host/native.js';

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

export function peerCred(socket: Socket): Promise<PeerCred> {
  return new Promise((resolve, reject) => {
    const child = spawn(nativeBinary('nanocell-peercred'), [], { stdio: [socket, 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /^(\d+) (\d+) (\d+)\n$/.exec(out);
      if (code !== 0 || !m)
        return reject(new Error(err.trim() || `nanocell-peercred exited ${code}`));
      resolve({ pid: Number(m[1]), uid: Number(m[2]), gid: Number(m[3]) });
    });
  });
}
