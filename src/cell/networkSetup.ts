// The cell's egress: nothing, or a proxy of its own. It listens on 127.0.0.1:3128 inside the
// cell's network namespace (the monitor makes that socket and hands it over; see adopt), or,
// without a seccomp listener, on a unix socket that init bridges that port to. The proxy
// decides and records every connection.
import fs from 'node:fs';
import type { Server } from 'node:net';
import type { NetRules } from '../net/rules.js';
import { startEgressProxy, type EgressProxy, type ProxyEvent } from '../net/proxy.js';
import { proxyEnv } from '../net/env.js';
import type { CellEvent } from './types.js';

export class CellNetwork {
  private constructor(
    private readonly proxy: EgressProxy | undefined,
    readonly rules: NetRules | undefined,
  ) {}

  get enabled(): boolean {
    return this.proxy !== undefined;
  }

  env(port: number): Record<string, string> {
    return proxyEnv(port);
  }

  static async start(o: {
    /** Compiled and validated by the resolve step. */
    rules: NetRules;
    /** Where init's bridge reaches the proxy; undefined when the monitor hands it a socket. */
    socketPath: string | undefined;
    socketOwner?: { uid: number; gid: number };
    onEvent: (e: CellEvent) => void;
  }): Promise<CellNetwork> {
    const { rules } = o;
    // A cidrs entry alone allows IP-literal destinations in its range, so it needs the proxy too.
    if (rules.allow.length === 0 && rules.cidrs.length === 0) {
      return new CellNetwork(undefined, rules);
    }
    const proxy = await startEgressProxy({
      rules,
      ...(o.socketPath !== undefined ? { socketPath: o.socketPath } : {}),
      ...(o.socketOwner ? { socketOwner: o.socketOwner } : {}),
      onEvent: (e: ProxyEvent) => o.onEvent(toCellEvent(e)),
    });
    if (o.socketPath !== undefined && !fs.existsSync(o.socketPath)) {
      await proxy.close();
      throw new Error(`the proxy did not create ${o.socketPath}`);
    }
    return new CellNetwork(proxy, rules);
  }

  /** See EgressProxy.adopt. */
  adopt(server: Server): void {
    if (!this.proxy) throw new Error('adopt: this cell has no proxy');
    this.proxy.adopt(server);
  }

  async close(): Promise<void> {
    await this.proxy?.close();
  }
}

function toCellEvent(e: ProxyEvent): CellEvent {
  return {
    type: e.decision === 'allowed' ? 'net.allowed' : 'net.denied',
    host: e.host,
    port: e.port,
    ip: e.ip,
    rule: e.rule,
    reason: e.reason ?? e.error ?? e.decision,
    protocol: e.protocol,
    bytesUp: e.bytesUp,
    bytesDown: e.bytesDown,
    durationMs: e.durationMs,
  };
}
