// The MCP tools over one session's cells. Every result is one JSON text block; every error is
// a tool error (isError) with nanocell's one-line message and fix, and the server goes on.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { renderDiff } from '../workspace/diff.js';
import { applyChangeSet } from '../workspace/apply.js';
import { discardChangeSet } from '../workspace/discard.js';
import { loadChangeSet } from '../workspace/manifest.js';
import { NanocellError } from '../util/errors.js';
import type { McpSession } from './session.js';

/** What fits an agent's context comfortably; a call may ask for more, up to the hard cap. */
const DEFAULT_OUTPUT_BYTES = 30_000;
const MAX_OUTPUT_BYTES = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 120_000;

export interface ToolOptions {
  /** Offer `apply` (writes a destroyed cell's change set into the project). */
  allowApply: boolean;
  /** Where create_cell puts the workspace when the call names none. */
  defaultWorkspace: string;
}

type Result = { content: Array<{ type: 'text'; text: string }>; isError?: boolean };

function ok(value: unknown): Result {
  return { content: [{ type: 'text', text: JSON.stringify(value, null, 2) }] };
}

/** Runs a tool body; a thrown error becomes a tool error the agent can read and act on. */
async function guarded(fn: () => Promise<unknown>): Promise<Result> {
  try {
    return ok(await fn());
  } catch (e) {
    const text =
      e instanceof NanocellError ? e.oneLine() : `internal error: ${(e as Error).message}`;
    return { content: [{ type: 'text', text }], isError: true };
  }
}

const cellId = z.string().describe('the cell_id create_cell returned');
const outputCap = z
  .number()
  .int()
  .positive()
  .max(MAX_OUTPUT_BYTES)
  .optional()
  .describe(
    `bytes of output kept (default ${DEFAULT_OUTPUT_BYTES}); the rest is cut, truncated: true`,
  );
const env = z.record(z.string(), z.string()).optional().describe('extra environment variables');

export function registerTools(server: McpServer, s: McpSession, o: ToolOptions): void {
  registerShellTools(server, s, o);
  registerBackgroundTools(server, s);
  registerFileTools(server, s);
  registerChangeTools(server, s);
  if (o.allowApply) registerApplyTool(server, s);
}

function registerShellTools(server: McpServer, s: McpSession, o: ToolOptions): void {
  server.registerTool(
    'create_cell',
    {
      description:
        'Start a disposable locked-down cell over a project directory. The task sees a copy-on-write view; nothing reaches the project until the change set is applied.',
      inputSchema: {
        workspace: z.string().optional().describe("project directory (default: the server's)"),
        policy: z.string().optional().describe('path of a nanocell policy file (YAML or JSON)'),
        allow_net: z.array(z.string()).optional().describe('extra network.allow entries'),
      },
    },
    (a) =>
      guarded(async () => {
        const cell = await s.create(a.workspace ?? o.defaultWorkspace, a.policy, a.allow_net);
        return { cell_id: cell.id, task_id: cell.taskId, workspace: cell.workspace };
      }),
  );

  server.registerTool(
    'run',
    {
      description:
        'Run a shell command (sh -c) in the cell and wait for it. The working directory and exported variables persist from one run to the next.',
      inputSchema: {
        cell_id: cellId,
        command: z.string().min(1),
        timeout_ms: z
          .number()
          .int()
          .positive()
          .optional()
          .describe(`default ${DEFAULT_TIMEOUT_MS}`),
        max_output_bytes: outputCap,
        env,
      },
    },
    (a) =>
      guarded(async () => {
        const r = await s.run(a.cell_id, a.command, {
          timeoutMs: a.timeout_ms ?? DEFAULT_TIMEOUT_MS,
          maxOutputBytes: a.max_output_bytes ?? DEFAULT_OUTPUT_BYTES,
          ...(a.env ? { env: a.env } : {}),
        });
        return {
          exit_code: r.exitCode,
          timed_out: r.timedOut,
          stdout: r.stdout,
          stderr: r.stderr,
          truncated: r.truncated,
        };
      }),
  );
}

function registerChangeTools(server: McpServer, s: McpSession): void {
  server.registerTool(
    'diff',
    {
      description:
        "The cell's changes to the project as a unified diff (of the live cell, or of the change set a destroyed cell left).",
      inputSchema: { cell_id: cellId, max_output_bytes: outputCap },
    },
    (a) =>
      guarded(async () => {
        const cap = a.max_output_bytes ?? DEFAULT_OUTPUT_BYTES;
        const ended = s.ended.get(a.cell_id);
        let text: string;
        if (ended) {
          if (!ended.changeDir) return { diff: '', truncated: false, note: 'no change set' };
          text = renderDiff(ended.changeDir, ended.workspace);
        } else {
          const p = await s.preview(a.cell_id);
          try {
            text = p.dir ? renderDiff(p.dir, s.get(a.cell_id).workspace) : '';
          } finally {
            p.cleanup();
          }
        }
        const bytes = Buffer.from(text);
        return {
          diff: bytes.subarray(0, cap).toString('utf8'),
          truncated: bytes.length > cap,
        };
      }),
  );

  server.registerTool(
    'destroy_cell',
    {
      description:
        'Stop every process in the cell, collect its change set (kept under the state root for diff and nanocell apply) and remove the cell.',
      inputSchema: { cell_id: cellId },
    },
    (a) =>
      guarded(async () => {
        const summary = await s.destroy(a.cell_id);
        return {
          task_id: summary.taskId,
          end_reason: summary.endReason,
          duration_ms: summary.durationMs,
          change_set: summary.changeSet ?? null,
        };
      }),
  );
}

function registerBackgroundTools(server: McpServer, s: McpSession): void {
  server.registerTool(
    'start_command',
    {
      description:
        "Start a shell command in the background (a server, a watcher). It starts in the persistent shell's directory; poll_command reads its output.",
      inputSchema: { cell_id: cellId, command: z.string().min(1), env },
    },
    (a) => guarded(async () => ({ job_id: s.start(a.cell_id, a.command, a.env) })),
  );
  server.registerTool(
    'poll_command',
    {
      description: 'Output of a background command since the last poll, and whether it still runs.',
      inputSchema: { cell_id: cellId, job_id: z.string() },
    },
    (a) =>
      guarded(async () => {
        const r = s.poll(a.cell_id, a.job_id);
        return {
          running: r.running,
          exit_code: r.exitCode,
          stdout: r.stdout,
          stderr: r.stderr,
          truncated: r.truncated,
        };
      }),
  );
  server.registerTool(
    'kill_command',
    {
      description: "Signal a background command's process group (default SIGTERM).",
      inputSchema: {
        cell_id: cellId,
        job_id: z.string(),
        signal: z.number().int().min(1).max(64).optional(),
      },
    },
    (a) =>
      guarded(async () => {
        s.kill(a.cell_id, a.job_id, a.signal ?? 15);
        return { signalled: true };
      }),
  );
}

function registerFileTools(server: McpServer, s: McpSession): void {
  const filePath = z.string().describe('path relative to the workspace, or absolute below it');
  server.registerTool(
    'read_file',
    {
      description: "Read a file of the cell's workspace (UTF-8), as the task sees it.",
      inputSchema: { cell_id: cellId, path: filePath, max_bytes: outputCap },
    },
    (a) =>
      guarded(async () => {
        const r = await s.get(a.cell_id).files.read(a.path, {
          maxBytes: a.max_bytes ?? DEFAULT_OUTPUT_BYTES,
        });
        return { content: r.content.toString('utf8'), size: r.size, truncated: r.truncated };
      }),
  );
  server.registerTool(
    'write_file',
    {
      description: "Create or replace a file in the cell's workspace (parent directories too).",
      inputSchema: { cell_id: cellId, path: filePath, content: z.string() },
    },
    (a) =>
      guarded(async () => {
        await s.get(a.cell_id).files.write(a.path, a.content, { parents: true });
        return { written: Buffer.byteLength(a.content) };
      }),
  );
  server.registerTool(
    'edit_file',
    {
      description:
        'Replace old_string with new_string in a file. old_string must occur exactly once unless replace_all is true.',
      inputSchema: {
        cell_id: cellId,
        path: filePath,
        old_string: z.string().min(1),
        new_string: z.string(),
        replace_all: z.boolean().optional(),
      },
    },
    (a) => guarded(() => replaceInFile(s, a)),
  );
  server.registerTool(
    'list_files',
    {
      description: "List a directory of the cell's workspace.",
      inputSchema: {
        cell_id: cellId,
        path: filePath.optional(),
        max_entries: z.number().int().positive().max(100_000).optional(),
      },
    },
    (a) =>
      guarded(async () => {
        const r = await s
          .get(a.cell_id)
          .files.list(a.path ?? '', { maxEntries: a.max_entries ?? 1000 });
        return { entries: r.entries, truncated: r.truncated };
      }),
  );
}

async function replaceInFile(
  s: McpSession,
  a: {
    cell_id: string;
    path: string;
    old_string: string;
    new_string: string;
    replace_all?: boolean;
  },
): Promise<{ replacements: number }> {
  const files = s.get(a.cell_id).files;
  const r = await files.read(a.path, { maxBytes: MAX_OUTPUT_BYTES * 16 });
  if (r.truncated) {
    throw new NanocellError(
      `${a.path} is too large to edit`,
      'edit it with run (sed, patch)',
      'USAGE',
    );
  }
  const text = r.content.toString('utf8');
  const count = text.split(a.old_string).length - 1;
  if (count === 0 || (count > 1 && !a.replace_all)) {
    throw new NanocellError(
      `old_string occurs ${count} times in ${a.path}`,
      count === 0
        ? 'read the file and copy the text exactly'
        : 'add context to make it unique, or pass replace_all: true',
      'USAGE',
    );
  }
  await files.write(a.path, text.split(a.old_string).join(a.new_string));
  return { replacements: a.replace_all ? count : 1 };
}

function registerApplyTool(server: McpServer, s: McpSession): void {
  server.registerTool(
    'apply',
    {
      description:
        "Write a destroyed cell's change set into the project, all of it or nothing. Offered because the server runs with --allow-apply.",
      inputSchema: { cell_id: cellId },
    },
    (a) =>
      guarded(async () => {
        const ended = s.ended.get(a.cell_id);
        if (!ended?.changeDir) {
          throw new NanocellError(
            `cell ${a.cell_id} has no change set to apply`,
            'destroy_cell the cell first; it collects the change set',
            'USAGE',
          );
        }
        const { manifest } = loadChangeSet(ended.changeDir);
        const r = applyChangeSet(ended.changeDir, manifest.projectDir);
        discardChangeSet(ended.changeDir, { record: false });
        s.ended.delete(a.cell_id);
        return { applied: r.applied, project: manifest.projectDir };
      }),
  );
}
