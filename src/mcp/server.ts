// `nanocell mcp`: an MCP server on stdio. One session per process; when the client closes
// the connection (or the process is told to stop) every cell it made is destroyed.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { PolicyFile } from '../policy/schema.js';
import { McpSession } from './session.js';
import { registerTools } from './tools.js';

export interface McpServeOptions {
  stateRoot?: string;
  basePolicy?: PolicyFile;
  allowApply: boolean;
  defaultWorkspace: string;
  version: string;
}

/** Serves until stdin closes or a stop signal; resolves once every cell is destroyed. */
export async function serveMcpStdio(o: McpServeOptions): Promise<void> {
  const session = new McpSession({
    ...(o.stateRoot ? { stateRoot: o.stateRoot } : {}),
    ...(o.basePolicy ? { basePolicy: o.basePolicy } : {}),
  });
  const server = new McpServer({ name: 'nanocell', version: o.version });
  registerTools(server, session, {
    allowApply: o.allowApply,
    defaultWorkspace: o.defaultWorkspace,
  });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    process.stdin.once('end', () => resolve());
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => resolve());
  });
  await server.connect(transport);
  answerUnreadableLines(transport);
  await closed;
  await session.close();
  await server.close().catch(() => undefined);
}

/**
 * The SDK drops a line that is not JSON-RPC with only an onerror call; JSON-RPC asks for a
 * parse error (-32700, id null), and a client debugging its requests deserves one. The
 * connection goes on either way.
 */
function answerUnreadableLines(transport: StdioServerTransport): void {
  const inner = transport.onerror;
  transport.onerror = (e: Error) => {
    inner?.(e);
    process.stderr.write(`nanocell mcp: unreadable message: ${e.message.split('\n')[0]}\n`);
    const error = { code: -32700, message: `parse error: ${e.message.split('\n')[0]}` };
    // The SDK's message type has no id-less error; JSON-RPC 2.0 answers a parse error so.
    void transport.send({ jsonrpc: '2.0', id: null, error } as never).catch(() => undefined);
  };
}
