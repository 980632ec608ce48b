// The SOCKS5 front (RFC 1928, CONNECT only, no authentication): greeting, request, then a
// tunnel to the named host (by name, IPv4 or IPv6 address). The wire format is socks5.ts.
import type net from 'node:net';
import type { ProxyCore } from './proxyCore.js';
import { checkedTunnel, DownstreamCopier } from './proxyRelay.js';
import { socksCode } from './proxyReplies.js';
import { parseGreeting, parseRequest, reply, Reply } from './socks5.js';

/** SOCKS handshakes larger than this are refused. */
const MAX_SOCKS_HANDSHAKE = 1024;

/** Serves one SOCKS5 client whose first bytes were already read. */
export function serveSocks(core: ProxyCore, client: net.Socket, first: Buffer) {
  let buf = first;
  let stage: 'greeting' | 'request' | 'dialing' = 'greeting';
  const onData = (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    step();
  };
  const reject = (replyBuf: Buffer, reason: string) => {
    core.refuse('socks5', 'bad-request', reason);
    client.end(replyBuf);
    client.destroySoon();
  };
  const step = () => {
    if (buf.length > MAX_SOCKS_HANDSHAKE)
      return reject(reply(Reply.generalFailure), 'handshake too long');
    if (stage === 'greeting') {
      const g = parseGreeting(buf);
      if (!g.ok) return g.more ? undefined : reject(g.reply, g.reason);
      client.write(g.value);
      buf = buf.subarray(g.used);
      stage = 'request';
    }
    if (stage === 'request') {
      const r = parseRequest(buf);
      if (!r.ok) return r.more ? undefined : reject(r.reply, r.reason);
      stage = 'dialing';
      client.off('data', onData);
      client.pause();
      core.handshakeDone(client);
      connect(core, client, r.value, buf.subarray(r.used));
    }
  };
  client.on('data', onData);
  step();
}

function connect(
  core: ProxyCore,
  client: net.Socket,
  { host, port }: { host: string; port: number },
  early: Buffer,
) {
  const a = core.attempt('socks5', host, port);
  const down = new DownstreamCopier();
  void core.reach(a, client, { onread: down.onread }).then((r) => {
    if (!r.ok) {
      if (r.failure) {
        if (client.writable) client.end(reply(socksCode(r.failure.failure)));
        client.destroySoon();
      }
      return;
    }
    client.write(reply(Reply.succeeded));
    checkedTunnel(client, early, a, r, down);
  });
}
