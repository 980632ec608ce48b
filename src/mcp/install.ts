// `nanocell mcp --install CLIENT [--write]`: the configuration that makes an agent start
// `nanocell mcp`. Without --write it is printed; with it, merged into the client's file (our
// entry replaced, everything else kept).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';

export const MCP_CLIENTS = ['claude', 'codex', 'gemini', 'cursor'] as const;
type McpClient = (typeof MCP_CLIENTS)[number];

const NAME = 'nanocell';

interface ServerCommand {
  command: string;
  args: string[];
}

interface ClientConfig {
  /** The file the client reads (project-local where the client has one). */
  file: string;
  /** The text to print, or the whole new file. */
  render(existing: string | undefined): string;
}

function jsonConfig(file: string, cmd: ServerCommand): ClientConfig {
  return {
    file,
    render(existing) {
      const doc = existing ? (JSON.parse(existing) as Record<string, unknown>) : {};
      const servers = (doc.mcpServers ?? {}) as Record<string, unknown>;
      doc.mcpServers = { ...servers, [NAME]: { command: cmd.command, args: cmd.args } };
      return `${JSON.stringify(doc, null, 2)}\n`;
    },
  };
}

const tomlString = (s: string) => JSON.stringify(s);

function codexConfig(file: string, cmd: ServerCommand): ClientConfig {
  const table = `[mcp_servers.${NAME}]`;
  const block = [
    table,
    `command = ${tomlString(cmd.command)}`,
    `args = [${cmd.args.map(tomlString).join(', ')}]`,
  ].join('\n');
  return {
    file,
    render(existing) {
      if (!existing) return `${block}\n`;
      // Our table runs to the next table header; replace it or append it.
      const lines = existing.split('\n');
      const start = lines.findIndex((l) => l.trim() === table);
      if (start < 0) return `${existing.replace(/\n*$/, '\n\n')}${block}\n`;
      let end = start + 1;
      while (end < lines.length && !/^\s*\[/.test(lines[end]!)) end++;
      return [...lines.slice(0, start), block, ...lines.slice(end)].join('\n');
    },
  };
}

function clientConfig(client: McpClient, cmd: ServerCommand, cwd: string): ClientConfig {
  switch (client) {
    case 'claude':
      return jsonConfig(path.join(cwd, '.mcp.json'), cmd);
    case 'cursor':
      return jsonConfig(path.join(cwd, '.cursor', 'mcp.json'), cmd);
    case 'gemini':
      return jsonConfig(path.join(os.homedir(), '.gemini', 'settings.json'), cmd);
    case 'codex':
      return codexConfig(path.join(os.homedir(), '.codex', 'config.toml'), cmd);
  }
}

/** Prints or writes the client's configuration; returns what to tell the user. */
export function installMcp(
  client: string,
  o: { write: boolean; cmd: ServerCommand; cwd: string },
): string {
  if (!(MCP_CLIENTS as readonly string[]).includes(client)) {
    throw new NanocellError(
      `unknown MCP client ${JSON.stringify(client)}`,
      `pass one of ${MCP_CLIENTS.join(', ')}`,
      'USAGE',
    );
  }
  const c = clientConfig(client as McpClient, o.cmd, o.cwd);
  const existing = fs.existsSync(c.file) ? fs.readFileSync(c.file, 'utf8') : undefined;
  let text: string;
  try {
    text = c.render(existing);
  } catch (e) {
    throw new NanocellError(
      `${c.file} is not valid JSON: ${(e as Error).message}`,
      'fix the file, or add the printed entry by hand',
      'USAGE',
    );
  }
  if (!o.write) return `# ${c.file}\n${c.render(undefined)}`;
  fs.mkdirSync(path.dirname(c.file), { recursive: true });
  fs.writeFileSync(c.file, text);
  return `wrote the nanocell MCP server into ${c.file}\n`;
}
