// `nanocell proxy --serve`: the multi-tenant proxy tier (docs/kubernetes.md, "Proxy tier").
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { TenantRegistry } from '../net/tenants.js';
import { startTenantFront } from '../net/tenantFront.js';
import { startControlServer } from '../net/tenantControl.js';
import { NanocellError } from '../util/errors.js';
import type { CliContext } from './context.js';

interface ServeOpts {
  serve?: boolean;
  listen: string;
  control: string;
  controlTokenFile?: string;
}

export function registerProxyCommand(program: Command, _ctx: CliContext): void {
  program
    .command('proxy')
    .description('egress proxy tier for cells on Kubernetes')
    .option('--serve', 'serve many tenants, registered by their supervisors')
    .option('--listen <host:port>', 'egress listener for the cells', '0.0.0.0:3128')
    .option('--control <host:port|/path.sock>', 'control listener for supervisors', '0.0.0.0:3129')
    .option(
      '--control-token-file <file>',
      "file holding the supervisors' bearer token (or NANOCELL_PROXY_CONTROL_TOKEN)",
    )
    .action(async (opts: ServeOpts) => {
      if (!opts.serve) {
        throw new NanocellError(
          'nothing to do',
          'pass --serve to run the multi-tenant proxy tier',
          'USAGE',
        );
      }
      await serve(opts);
    });
}

async function serve(opts: ServeOpts): Promise<void> {
  const token = (
    opts.controlTokenFile
      ? fs.readFileSync(opts.controlTokenFile, 'utf8')
      : (process.env.NANOCELL_PROXY_CONTROL_TOKEN ?? '')
  ).trim();
  if (!token) {
    throw new NanocellError(
      'the proxy tier needs a control token',
      'pass --control-token-file or set NANOCELL_PROXY_CONTROL_TOKEN',
      'USAGE',
    );
  }
  const i = opts.listen.lastIndexOf(':');
  const port = Number(opts.listen.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new NanocellError(
      `--listen ${opts.listen} is not host:port`,
      'write e.g. --listen 0.0.0.0:3128',
      'USAGE',
    );
  }
  const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanocell-tier-'));
  fs.chmodSync(socketDir, 0o700);
  const log = (o: unknown) => process.stderr.write(`${JSON.stringify(o)}\n`);
  const registry = new TenantRegistry(socketDir, {
    onRefused: (e) => log({ type: 'refused', ...e }),
  });
  const front = await startTenantFront(registry, {
    host: opts.listen.slice(0, i).replace(/^\[|\]$/g, ''),
    port,
  });
  const control = await startControlServer(registry, { listen: opts.control, token });
  const a = front.address();
  log({ type: 'listening', egress: `${a.address}:${a.port}`, control: control.where });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await front.close();
  await control.close();
  await registry.close();
  if (opts.control.startsWith('/')) fs.rmSync(opts.control, { force: true });
  fs.rmSync(socketDir, { recursive: true, force: true });
}
