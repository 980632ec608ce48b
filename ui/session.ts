// A session's page: its tasks oldest first (the order they stacked in), each with its end,
// denials and what became of its change set, and the unapplied chain `apply --session` takes.
import { api, h, link, row, taskHref } from './dom.js';

interface SessionPage {
  name: string;
  chain: string[];
  tasks: {
    id: string;
    command: string[];
    status: string;
    endReason: string | null;
    exitCode: number | null;
    denied: number;
    changeSet: { status: string; paths?: string[]; text: string } | null;
    stack: string[];
  }[];
}

export async function sessionView(app: HTMLElement, name: string): Promise<void> {
  const s = await api<SessionPage>(`/api/sessions/${encodeURIComponent(name)}`);
  const body = h('tbody');
  s.tasks.forEach((t, i) => {
    const fate = t.changeSet
      ? `${t.changeSet.status}${t.changeSet.paths ? ` (${t.changeSet.paths.length} path(s))` : ''}`
      : 'no change set';
    const tr = row('td', [
      String(i + 1),
      link(taskHref(t.id), t.id),
      t.endReason ?? t.status,
      String(t.exitCode ?? '-'),
      String(t.denied),
      fate,
      t.stack.length ? `on ${t.stack.join(', ')}` : '',
      t.command.join(' '),
    ]);
    tr.dataset.task = t.id;
    if (t.denied) tr.classList.add('denied');
    body.append(tr);
  });
  app.replaceChildren(
    h('h2', {}, `Session ${s.name}`),
    h(
      'p',
      { id: 'chain-line' },
      s.chain.length
        ? `unapplied chain (nanocell apply --session ${s.name}): ${s.chain.join(' → ')}`
        : 'no unapplied change sets',
    ),
    h(
      'table',
      { id: 'session-tasks' },
      h(
        'thead',
        {},
        row('th', ['#', 'task', 'end', 'exit', 'denied', 'change set', 'stacked', 'command']),
      ),
      body,
    ),
  );
}
