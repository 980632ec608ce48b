// The sockets the monitor makes in the cell's network namespace and hands over on its IPC
// channel, one NODE_HANDLE message each (native/monitor/proxyport.c): the explicit proxy's
// listener, a connection to it made in the cell (for the start check, selfCheck.ts) and, with capture, the transparent listeners and the DNS stub's UDP sockets. A
// dgram handle is bound asynchronously by Node, so the messages may arrive in any order: the
// cell starts once every expected one is here.
import dgram from 'node:dgram';
import net from 'node:net';
import { CAPTURE_HANDLES, type CaptureHandle } from '../net/capture.js';
import { NanocellError } from '../util/errors.js';
import type { MonitorProcess } from './monitor.js';

export interface HandedOver {
  proxy: net.Server;
  /**
   * Connections the listener accepted before the last handle came (the start check's probe
   * connects at once, and Node listens on a handed-over server as soon as it arrives).
   */
  accepted: net.Socket[];
  /** Connected from the cell's 127.0.0.1 to the proxy's port, for the start check. */
  probe: net.Socket;
  /** Present when the cell has transparent capture. */
  capture?: Record<CaptureHandle, net.Server | dgram.Socket>;
}

export function receiveHandles(monitor: MonitorProcess, capture: boolean): Promise<HandedOver> {
  const expected = new Set<string>([
    'proxy-listener',
    'proxy-probe',
    ...(capture ? CAPTURE_HANDLES : []),
  ]);
  const got = new Map<string, net.Server | net.Socket | dgram.Socket>();
  const accepted: net.Socket[] = [];
  const hold = (s: net.Socket) => void accepted.push(s);
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown, handle: unknown) => {
      const tag = (m as { nanocell?: unknown } | null)?.nanocell;
      const okHandle =
        tag === 'proxy-probe'
          ? handle instanceof net.Socket
          : handle instanceof net.Server || handle instanceof dgram.Socket;
      if (typeof tag !== 'string' || !expected.has(tag) || !okHandle || got.has(tag)) {
        monitor.off('message', onMessage);
        reject(
          new NanocellError(
            `the monitor handed over an unexpected socket (${String(tag)})`,
            'rebuild the native helpers (make -C native)',
            'INTERNAL',
          ),
        );
        return;
      }
      got.set(tag, handle as net.Server | net.Socket | dgram.Socket);
      if (tag === 'proxy-listener') (handle as net.Server).on('connection', hold);
      if (got.size < expected.size) return;
      monitor.off('message', onMessage);
      const proxy = got.get('proxy-listener') as net.Server;
      proxy.off('connection', hold);
      const probe = got.get('proxy-probe') as net.Socket;
      if (!capture) return resolve({ proxy, probe, accepted });
      const c = Object.fromEntries(CAPTURE_HANDLES.map((t) => [t, got.get(t)!]));
      resolve({ proxy, probe, accepted, capture: c as HandedOver['capture'] & object });
    };
    monitor.on('message', onMessage);
  });
}
