// The cells a cell server owns: created by one client's `create`, driven by any client of
// the same uid by id, and alive until a client destroys them or the server stops (which
// destroys them all, collecting their change sets). A server that dies without stopping
// (SIGKILL) takes its cells with it: each cell's init dies with its supervisor, and the next
// start's garbage collection removes what was left (docs/architecture.md, "State").
import path from 'node:path';
import { Cell } from '../cell/cell.js';
import type { CellSummary } from '../cell/types.js';
import type { Policy } from '../policy/defaults.js';
import { NanocellError } from '../util/errors.js';
import type { CellInfo } from '../cell/remote/protocol.js';

export interface CreateRequest {
  policy: Policy;
  workspace: string;
  session?: string;
  taskId?: string;
  extraAllowNet?: string[];
}

export class ServerCells {
  private readonly cells = new Map<string, Cell>();
  /** Cells being created: a server that stops meanwhile destroys them as they come up. */
  private readonly starting = new Set<Promise<Cell>>();
  private closing = false;

  constructor(
    private readonly stateRoot: string,
    private readonly log?: (msg: string) => void,
  ) {}

  async create(r: CreateRequest): Promise<CellInfo> {
    if (this.closing) throw stopping();
    const started = Cell.create({
      policy: r.policy,
      workspace: path.resolve(r.workspace),
      stateRoot: this.stateRoot,
      ...(r.session ? { session: r.session } : {}),
      ...(r.taskId ? { taskId: r.taskId } : {}),
      ...(r.extraAllowNet ? { extraAllowNet: r.extraAllowNet } : {}),
    });
    this.starting.add(started);
    let cell: Cell;
    try {
      cell = await started;
    } finally {
      this.starting.delete(started);
    }
    if (this.closing) {
      await cell.destroy().catch(() => undefined);
      throw stopping();
    }
    cell.on('log', (line: string) => this.log?.(`cell ${cell.id}: ${line}`));
    this.cells.set(cell.id, cell);
    return info(cell);
  }

  get(id: string): Cell {
    const c = this.cells.get(id);
    if (!c) {
      throw new NanocellError(
        `no cell ${JSON.stringify(id)} on this cell server`,
        "list the server's cells with Cell.list() (it may have been destroyed)",
        'USAGE',
      );
    }
    return c;
  }

  info(id: string): CellInfo {
    return info(this.get(id));
  }

  list(): CellInfo[] {
    return [...this.cells.values()].map(info);
  }

  /** Ends the cell and collects its change set; the id is gone at once for everyone. */
  destroy(id: string): Promise<CellSummary> {
    const c = this.get(id);
    this.cells.delete(id);
    return c.destroy();
  }

  /** The server stops: every cell, and every one still starting, is destroyed. */
  async destroyAll(): Promise<void> {
    this.closing = true;
    const ids = [...this.cells.keys()];
    await Promise.allSettled([
      ...ids.map((id) => this.destroy(id)),
      ...[...this.starting].map((p) => p.then((c) => c.destroy())),
    ]);
  }
}

function info(c: Cell): CellInfo {
  return {
    id: c.id,
    taskId: c.taskId,
    session: c.session,
    workspace: c.workspace,
    startedAt: c.startedAt,
    commands: [...c.current.values()],
  };
}

const stopping = () =>
  new NanocellError('the cell server is stopping', 'start it again with nanocell serve', 'STATE');
