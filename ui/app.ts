// The dashboard page (bundled by esbuild into dist/ui/app.js). Everything a task wrote (file
// names, commands, output, hosts) reaches the page through textContent only, with control
// characters shown as escapes: nothing recorded is ever parsed as markup or run.

const UNSAFE =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/gu;
const shown = (s: unknown): string =>
  String(s ?? '').replace(UNSAFE, (c) =>
    c === '\x1b' ? '\\e' : `\\x${c.codePointAt(0)!.toString(16).padStart(2, '0')}`,
  );

type Child = Node | string;
function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children)
    el.append(typeof c === 'string' ? document.createTextNode(shown(c)) : c);
  return el;
}

async function api<T>(path: string, method = 'GET'): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: method === 'POST' ? { 'X-Nanocell-UI': '1' } : {},
    credentials: 'same-origin',
  });
  const body = (await res.json()) as T & { error?: string; fix?: string };
  if (!res.ok)
    throw new Error(`${body.error ?? res.status}${body.fix ? ` (fix: ${body.fix})` : ''}`);
  return body;
}

const app = document.getElementById('app')!;
let timer: number | undefined;
const age = (ms: number) => `${Math.round((Date.now() - ms) / 1000)} s`;
const fmtBytes = (n: number | null) => (n === null ? '-' : `${(n / 1048576).toFixed(1)} MiB`);

interface LiveCell {
  cellId: string;
  taskId: string;
  session: string;
  ageMs: number;
  memoryBytes: number | null;
  pids: number | null;
  commands: string[][];
}

async function home(): Promise<void> {
  const cells = h('tbody');
  const tasks = h('tbody');
  const session = h('input', { id: 'f-session', placeholder: 'session' }) as HTMLInputElement;
  const reason = h('select', { id: 'f-reason' }) as HTMLSelectElement;
  for (const r of ['', 'exited', 'signaled', 'timeout', 'oom', 'killed', 'stopped', 'error'])
    reason.append(h('option', { value: r }, r || 'any end'));
  const denials = h('input', { id: 'f-denials', type: 'checkbox' }) as HTMLInputElement;
  app.replaceChildren(
    h('h2', {}, 'Live cells'),
    h(
      'table',
      { id: 'cells' },
      h('thead', {}, row('th', ['task', 'session', 'age', 'memory', 'pids', 'command'])),
      cells,
    ),
    h('h2', {}, 'Task history'),
    h('div', { class: 'filters' }, session, reason, h('label', {}, denials, ' with denials')),
    h(
      'table',
      { id: 'tasks' },
      h('thead', {}, row('th', ['task', 'session', 'end', 'exit', 'events', 'denied', 'command'])),
      tasks,
    ),
  );
  const refresh = async () => {
    const live = await api<LiveCell[]>('/api/cells');
    cells.replaceChildren(
      ...live.map((c) =>
        row('td', [
          link(`#/task/${c.taskId}`, c.taskId),
          c.session,
          age(Date.now() - c.ageMs),
          fmtBytes(c.memoryBytes),
          String(c.pids ?? '-'),
          c.commands.map((a) => a.join(' ')).join('; '),
        ]),
      ),
    );
    const q = new URLSearchParams({
      session: session.value,
      reason: reason.value,
      denials: denials.checked ? '1' : '',
    });
    const list = await api<
      {
        id: string;
        session: string;
        endReason: string | null;
        exitCode: number | null;
        events: number;
        denied: number;
        command: string[];
        status: string;
      }[]
    >(`/api/tasks?${q}`);
    tasks.replaceChildren(
      ...list.map((t) =>
        row('td', [
          link(`#/task/${t.id}`, t.id),
          t.session,
          t.endReason ?? t.status,
          String(t.exitCode ?? '-'),
          String(t.events),
          String(t.denied),
          t.command.join(' '),
        ]),
      ),
    );
  };
  for (const el of [session, reason, denials]) el.addEventListener('change', () => void refresh());
  await refresh();
  timer = window.setInterval(() => void refresh().catch(() => undefined), 1000);
}

function row(cell: 'td' | 'th', values: Child[]): HTMLElement {
  return h('tr', {}, ...values.map((v) => h(cell, {}, v)));
}

function link(href: string, label: string): HTMLElement {
  return h('a', { href }, label);
}

interface TaskPage {
  task: {
    id: string;
    session: string;
    command: string[];
    status: string;
    endReason: string | null;
    exitCode: number | null;
  };
  chain: { ok: boolean; brokenAt?: number; reason?: string };
  eventCount: number;
  groups: { type: string; key: string; count: number; sample: string }[];
}

async function taskView(id: string): Promise<void> {
  const t = await api<TaskPage>(`/api/tasks/${encodeURIComponent(id)}`);
  const chain = t.chain.ok
    ? h('p', { class: 'okchain', id: 'chain' }, `hash chain intact (${t.eventCount} events)`)
    : h(
        'p',
        { class: 'broken', id: 'chain' },
        `the audit chain is broken at event ${t.chain.brokenAt ?? '?'}: ${t.chain.reason ?? ''}`,
      );
  const groups = h('tbody');
  for (const g of t.groups) {
    const cls =
      g.type.endsWith('denied') || g.type === 'limit.hit'
        ? 'denied'
        : g.type === 'net.allowed'
          ? 'allowed'
          : '';
    groups.append(
      h(
        'tr',
        { class: cls },
        h('td', {}, g.type),
        h('td', { class: 'mono' }, g.key),
        h('td', {}, `×${g.count}`),
        h('td', { class: 'mono' }, g.sample),
      ),
    );
  }
  const changes = h('div', { id: 'changes' });
  const requests = t.task.status === 'running' ? requestsBox(id, t.groups) : [];
  app.replaceChildren(
    h('h2', {}, `Task ${t.task.id}`),
    h(
      'p',
      {},
      h('code', {}, t.task.command.join(' ')),
      ` — session ${shown(t.task.session)}, ${t.task.endReason ?? t.task.status}, exit ${t.task.exitCode ?? '-'}`,
    ),
    chain,
    ...requests,
    h('h2', {}, 'Timeline (grouped)'),
    h(
      'table',
      { id: 'timeline' },
      h('thead', {}, row('th', ['event', 'what', 'count', 'example'])),
      groups,
    ),
    h('h2', {}, 'Change set'),
    changes,
  );
  await changeSet(id, changes, 0);
}

/** A running cell's refused destinations, each answerable: allow once, for this cell, deny. */
function requestsBox(id: string, groups: TaskPage['groups']): HTMLElement[] {
  const msg = h('div', { class: 'msg', id: 'req-msg' });
  msg.hidden = true;
  const list = h('tbody');
  for (const g of groups.filter((x) => x.type === 'net.denied')) {
    const cut = g.key.lastIndexOf(':');
    const host = g.key.slice(0, cut);
    const port = g.key.slice(cut + 1);
    const buttons = (['once', 'cell', 'deny'] as const).map((decision) => {
      const label =
        decision === 'once' ? 'Allow once' : decision === 'cell' ? 'Allow for this cell' : 'Deny';
      const b = h('button', { 'data-dest': g.key, 'data-decision': decision }, label);
      b.addEventListener('click', () => {
        const q = new URLSearchParams({ host, port, decision });
        api<{ decided: string }>(`/api/tasks/${encodeURIComponent(id)}/egress?${q}`, 'POST').then(
          (r) => {
            msg.hidden = false;
            msg.textContent = shown(
              `${g.key}: ${r.decided === 'deny' ? 'denied' : r.decided === 'once' ? 'allowed once' : 'allowed for this cell'}`,
            );
          },
          (e: Error) => {
            msg.hidden = false;
            msg.textContent = shown(e.message);
          },
        );
      });
      return b;
    });
    list.append(
      h(
        'tr',
        {},
        h('td', { class: 'mono' }, g.key),
        h('td', {}, `×${g.count}`),
        h('td', {}, ...buttons),
      ),
    );
  }
  return [
    h('h2', {}, 'Requests (refused destinations)'),
    msg,
    h('table', { id: 'requests' }, list),
  ];
}

interface ChangesPage {
  exists: boolean;
  fate?: string;
  status?: string;
  reason?: string;
  total?: number;
  offset?: number;
  entries?: { path: string; kind: string; type: string; size?: number }[];
  refused?: { path: string; reason: string }[];
}

async function changeSet(id: string, box: HTMLElement, offset: number): Promise<void> {
  const c = await api<ChangesPage>(`/api/tasks/${encodeURIComponent(id)}/changes?offset=${offset}`);
  if (!c.exists) return void box.replaceChildren(h('p', { id: 'fate' }, c.fate ?? ''));
  const msg = h('div', { class: 'msg', id: 'msg' });
  msg.hidden = true;
  const say = (s: string) => {
    msg.hidden = false;
    msg.textContent = shown(s);
  };
  const act = (verb: 'apply' | 'discard') => async () => {
    try {
      const r = await api<{ applied?: number }>(
        `/api/tasks/${encodeURIComponent(id)}/${verb}`,
        'POST',
      );
      say(verb === 'apply' ? `applied ${r.applied} change(s)` : 'discarded');
    } catch (e) {
      say((e as Error).message);
    }
  };
  const applyBtn = h('button', { id: 'apply' }, 'Apply all');
  applyBtn.addEventListener('click', () => void act('apply')());
  const discardBtn = h('button', { id: 'discard' }, 'Discard');
  discardBtn.addEventListener('click', () => void act('discard')());
  const patch = h(
    'a',
    { id: 'patch', href: `/api/tasks/${encodeURIComponent(id)}/patch`, download: `${id}.patch` },
    'Save patch',
  );
  const files = h('ul', { class: 'files', id: 'files' });
  const view = h('div', { id: 'diff' });
  for (const e of c.entries ?? []) {
    const li = h('li', { 'data-path': e.path }, `${e.kind} ${e.type} `, h('code', {}, e.path));
    li.addEventListener('click', () => {
      for (const x of files.children) x.classList.remove('sel');
      li.classList.add('sel');
      void showDiff(id, e.path, view);
    });
    files.append(li);
  }
  const refused = (c.refused ?? []).map((r) =>
    h('li', { class: 'denied' }, 'refused: ', h('code', {}, r.path), ` (${shown(r.reason)})`),
  );
  const more: HTMLElement[] = [];
  if ((c.total ?? 0) > (c.offset ?? 0) + (c.entries?.length ?? 0)) {
    const next = h('button', {}, 'next page');
    next.addEventListener(
      'click',
      () => void changeSet(id, box, (c.offset ?? 0) + (c.entries?.length ?? 0)),
    );
    more.push(next);
  }
  box.replaceChildren(
    h('p', {}, `${c.total} change(s), status ${c.status ?? ''}${c.reason ? `: ${c.reason}` : ''}`),
    h('div', {}, applyBtn, discardBtn, patch),
    msg,
    files,
    ...more,
    h('ul', {}, ...refused),
    view,
  );
}

interface FileDiff {
  path: string;
  kind: string;
  type: string;
  binary?: boolean;
  error?: string;
  target?: string;
  rows: { left?: string; right?: string; op: string }[];
}

async function showDiff(id: string, path: string, view: HTMLElement): Promise<void> {
  const d = await api<FileDiff>(
    `/api/tasks/${encodeURIComponent(id)}/diff?path=${encodeURIComponent(path)}`,
  );
  const title = h('h2', {}, `${d.kind}: `, h('code', {}, d.path));
  if (d.binary)
    return void view.replaceChildren(title, h('p', {}, 'binary file (or too large to show)'));
  if (d.error)
    return void view.replaceChildren(
      title,
      h('p', {}, `cannot read the project's file: ${d.error}`),
    );
  if (d.type !== 'file')
    return void view.replaceChildren(
      title,
      h('p', {}, `${d.type}${d.target ? ` -> ${d.target}` : ''}`),
    );
  const body = h('tbody');
  for (const r of d.rows)
    body.append(
      h(
        'tr',
        { class: r.op },
        h('td', { class: 'l' }, r.left ?? ''),
        h('td', { class: 'r' }, r.right ?? ''),
      ),
    );
  view.replaceChildren(
    title,
    h('table', { class: 'diff', id: 'sbs' }, h('thead', {}, row('th', ['project', 'task'])), body),
  );
}

async function route(): Promise<void> {
  window.clearInterval(timer);
  const m = /^#\/task\/([^/]+)$/.exec(location.hash);
  try {
    if (m) await taskView(decodeURIComponent(m[1]!));
    else await home();
  } catch (e) {
    app.replaceChildren(h('p', { class: 'broken' }, (e as Error).message));
  }
}

window.addEventListener('hashchange', () => void route());
void route();
