// `nanocell mcp` run by an unprivileged user: the file tools reach a rootless cell's view
// (its own user namespace and mounts) and keep their refusals there.
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliFor } from '../../helpers/cells.js';
import {
  makeRootlessSandbox,
  ROOTLESS_USER,
  type RootlessSandbox,
} from '../../helpers/rootless.js';

let sb: RootlessSandbox;
let client: Client | undefined;
beforeEach(() => {
  sb = makeRootlessSandbox('mcp-rootless-', {
    'a.txt': 'from the project\n',
    'secret.env': 'TOKEN=x\n',
    // Rootless hosts here lack delegated cgroups and a disk cap: accepted, as the rootless CLI tests do.
    'policy.json': JSON.stringify({
      allowDegraded: ['cgroups', 'disk-cap'],
      workspace: { exclude: ['secret.env'] },
    }),
  });
});
afterEach(async () => {
  await client?.close().catch(() => undefined);
  client = undefined;
  sb.cleanup();
});

type Reply = { content: Array<{ text: string }>; isError?: boolean };

describe('nanocell mcp rootless', () => {
  it('reads and writes the cell view as the user, and refuses outside paths', async () => {
    const cli = cliFor(ROOTLESS_USER, sb.base);
    const transport = new StdioClientTransport({
      command: 'runuser',
      args: [
        '-u',
        ROOTLESS_USER,
        '--',
        'env',
        `NANOCELL_STATE_ROOT=${sb.stateRoot}`,
        process.execPath,
        cli,
        'mcp',
        '--policy',
        path.join(sb.project, 'policy.json'),
      ],
      cwd: sb.project,
      stderr: 'pipe',
    });
    client = new Client({ name: 'nanocell-test', version: '0.0.0' });
    await client.connect(transport);
    const call = async (name: string, args: Record<string, unknown>) =>
      (await client!.callTool({ name, arguments: args })) as Reply;
    const created = await call('create_cell', {});
    expect(created.isError, created.content[0]!.text).toBeFalsy();
    const { cell_id } = JSON.parse(created.content[0]!.text) as { cell_id: string };

    const read = await call('read_file', { cell_id, path: 'a.txt' });
    expect(JSON.parse(read.content[0]!.text)).toMatchObject({ content: 'from the project\n' });
    expect(
      (await call('write_file', { cell_id, path: 'new/b.txt', content: 'made\n' })).isError,
    ).toBeFalsy();
    const ran = await call('run', {
      cell_id,
      command: 'cat new/b.txt; stat -c %u new/b.txt; id -u',
    });
    const out = JSON.parse(ran.content[0]!.text) as { stdout: string };
    const [body, owner, me] = out.stdout.split('\n');
    expect(body).toBe('made');
    expect(owner).toBe(me);
    expect((await call('read_file', { cell_id, path: 'secret.env' })).content[0]!.text).toMatch(
      /no such file/,
    );
    expect((await call('read_file', { cell_id, path: '/etc/passwd' })).content[0]!.text).toMatch(
      /outside/,
    );
    expect(fs.existsSync(path.join(sb.project, 'new'))).toBe(false);
    expect((await call('destroy_cell', { cell_id })).isError).toBeFalsy();
  });
});
