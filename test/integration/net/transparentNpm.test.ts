// The real npm registry through transparent capture: `npm install` with every proxy variable
// removed from the cell. On these machines registry.npmjs.org resolves to an address in a
// reserved documentation range, which the proxy refuses by default, so the policy adds a CIDR
// rule for whatever the name resolves to now (docs/network.md: "Behind a mirror").
import { promises as dns } from 'node:dns';
import { afterEach, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import type { CellEvent } from '../../../src/cell/types.js';
import { proxyEnv } from '../../../src/net/env.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, type Sandbox } from '../../helpers/cells.js';
import { waitFor } from './cellServers.js';

const REGISTRY = 'registry.npmjs.org';
const PKG = 'is-number';
const VERSION = '7.0.0';

let sb: Sandbox | undefined;
let cell: Cell | undefined;
afterEach(async () => {
  await cell?.destroy().catch(() => undefined);
  sb?.cleanup();
  cell = undefined;
  sb = undefined;
});

const install =
  `unset ${Object.keys(proxyEnv(3128)).join(' ')}; ` +
  'export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt; ' +
  `npm install --no-audit --no-fund --fetch-retries 0 --fetch-timeout 20000 ${PKG}@${VERSION} 2>&1 | tail -3; ` +
  `node -p "require('./node_modules/${PKG}/package.json').version"`;

async function cellWith(network: object, events: CellEvent[]): Promise<Cell> {
  sb = makeSandbox({ 'package.json': '{"name":"t","version":"1.0.0"}\n' });
  cell = await Cell.create({
    policy: resolvePolicy(parsePolicy({ network })),
    workspace: sb.project,
    stateRoot: sb.stateRoot,
    onEvent: (e) => events.push(e),
  });
  return cell;
}

describe('npm install from the real registry, no proxy variables', () => {
  it('installs when only the registry name is allowed', async () => {
    const addrs = (await dns.lookup(REGISTRY, { all: true })).map((a) =>
      a.family === 6 ? `[${a.address}/128]` : `${a.address}/32`,
    );
    const events: CellEvent[] = [];
    const c = await cellWith({ allow: [REGISTRY], cidrs: addrs }, events);
    const r = await c.run(['bash', '-c', install]);
    expect(r.stdout.trim().split('\n').pop(), r.stdout).toBe(VERSION);
    await waitFor(
      events,
      (all) =>
        all.some(
          (e) =>
            e.type === 'net.allowed' && e.host === REGISTRY && e.protocol === 'transparent-tls',
        ),
      'the registry connection',
    );
  }, 120_000);

  it('is refused and recorded when the registry is not allowed', async () => {
    const events: CellEvent[] = [];
    const c = await cellWith({ allow: ['example.org'] }, events);
    const r = await c.run(['bash', '-c', install]);
    expect(r.stdout).toMatch(/^npm error network/m);
    expect(r.stdout.trim().split('\n').pop()).not.toBe(VERSION);
    await waitFor(
      events,
      (all) => all.some((e) => e.type === 'dns.denied' && e.name === REGISTRY),
      'dns.denied for the registry',
    );
  }, 120_000);
});
