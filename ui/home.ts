// The home page: the live cells (CPU and memory against their limits, refreshed every second),
// the sessions with unapplied work, and the task history with its filters.
import { api, h, link, meter, row, sessionHref, taskHref } from './dom.js';

const age = (ms: number) => `${Math.round(ms / 1000)} s`;
const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

interface LiveCell {
  cellId: string;
  taskId: string;
  session: string;
  ageMs: number;
  memoryBytes: number | null;
  pids: number | null;
  cpuPercent: number | null;
  limits: { memoryBytes: number | null; cpus: number | null; pids: number | null };
  commands: string[][];
}

interface TaskRow {
  id: string;
  session: string;
  endReason: string | null;
  exitCode: number | null;
  events: number;
  denied: number;
  command: string[];
  status: string;
}

function cpuCell(c: LiveCell): HTMLElement {
  const limit = c.limits.cpus === null ? null : c.limits.cpus * 100;
  const used = c.cpuPercent === null ? '…' : `${c.cpuPercent.toFixed(1)}%`;
  const of = c.limits.cpus === null ? 'no limit' : `${c.limits.cpus} CPU`;
  return meter('cpu', c.cpuPercent, limit, `${used} of ${of}`);
}

function memoryCell(c: LiveCell): HTMLElement {
  const used = c.memoryBytes === null ? '-' : mib(c.memoryBytes);
  const of = c.limits.memoryBytes === null ? 'no limit' : mib(c.limits.memoryBytes);
  return meter('memory', c.memoryBytes, c.limits.memoryBytes, `${used} of ${of}`);
}

function cellRow(c: LiveCell): HTMLElement {
  return row('td', [
    link(taskHref(c.taskId), c.taskId),
    c.session ? link(sessionHref(c.session), c.session) : '',
    age(c.ageMs),
    cpuCell(c),
    memoryCell(c),
    `${c.pids ?? '-'}${c.limits.pids === null ? '' : ` / ${c.limits.pids}`}`,
    c.commands.map((a) => a.join(' ')).join('; '),
  ]);
}

function historyFilters() {
  const session = h('input', { id: 'f-session', placeholder: 'session' }) as HTMLInputElement;
  const reason = h('select', { id: 'f-reason' }) as HTMLSelectElement;
  for (const r of ['', 'exited', 'signaled', 'timeout', 'oom', 'killed', 'stopped', 'error'])
    reason.append(h('option', { value: r }, r || 'any end'));
  const denials = h('input', { id: 'f-denials', type: 'checkbox' }) as HTMLInputElement;
  const query = () =>
    new URLSearchParams({
      session: session.value,
      reason: reason.value,
      denials: denials.checked ? '1' : '',
    });
  const el = h(
    'div',
    { class: 'filters' },
    session,
    reason,
    h('label', {}, denials, ' with denials'),
  );
  return { el, inputs: [session, reason, denials], query };
}

/** Renders the home page into `app`; returns the refresh to run every second. */
export async function home(app: HTMLElement): Promise<() => Promise<void>> {
  const cells = h('tbody');
  const tasks = h('tbody');
  const sessions = h('ul', { id: 'sessions' });
  const filters = historyFilters();
  app.replaceChildren(
    h('h2', {}, 'Live cells'),
    h(
      'table',
      { id: 'cells' },
      h('thead', {}, row('th', ['task', 'session', 'age', 'cpu', 'memory', 'pids', 'command'])),
      cells,
    ),
    h('h2', {}, 'Sessions with unapplied change sets'),
    sessions,
    h('h2', {}, 'Task history'),
    filters.el,
    h(
      'table',
      { id: 'tasks' },
      h('thead', {}, row('th', ['task', 'session', 'end', 'exit', 'events', 'denied', 'command'])),
      tasks,
    ),
  );
  const refresh = async () => {
    cells.replaceChildren(...(await api<LiveCell[]>('/api/cells')).map(cellRow));
    const open = await api<{ name: string; tasks: string[] }[]>('/api/sessions');
    sessions.replaceChildren(
      ...open.map((s) =>
        h('li', {}, link(sessionHref(s.name), s.name), ` — ${s.tasks.length} task(s)`),
      ),
    );
    const list = await api<TaskRow[]>(`/api/tasks?${filters.query()}`);
    tasks.replaceChildren(
      ...list.map((t) =>
        row('td', [
          link(taskHref(t.id), t.id),
          link(sessionHref(t.session), t.session),
          t.endReason ?? t.status,
          String(t.exitCode ?? '-'),
          String(t.events),
          String(t.denied),
          t.command.join(' '),
        ]),
      ),
    );
  };
  for (const el of filters.inputs) el.addEventListener('change', () => void refresh());
  await refresh();
  return refresh;
}
