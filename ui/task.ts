// A task's page: its command and end, whether its audit chain holds, the running cell's refused
// destinations as requests to answer, the grouped timeline, and its change set.
import { changeSet } from './changes.js';
import { api, h, link, messageBox, row, sessionHref } from './dom.js';

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

function chainLine(t: TaskPage): HTMLElement {
  return t.chain.ok
    ? h('p', { class: 'okchain', id: 'chain' }, `hash chain intact (${t.eventCount} events)`)
    : h(
        'p',
        { class: 'broken', id: 'chain' },
        `the audit chain is broken at event ${t.chain.brokenAt ?? '?'}: ${t.chain.reason ?? ''}`,
      );
}

function timeline(t: TaskPage): HTMLElement {
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
  return h(
    'table',
    { id: 'timeline' },
    h('thead', {}, row('th', ['event', 'what', 'count', 'example'])),
    groups,
  );
}

export async function taskView(app: HTMLElement, id: string): Promise<void> {
  const t = await api<TaskPage>(`/api/tasks/${encodeURIComponent(id)}`);
  const changes = h('div', { id: 'changes' });
  const requests = t.task.status === 'running' ? requestsBox(id, t.groups) : [];
  app.replaceChildren(
    h('h2', {}, `Task ${t.task.id}`),
    h(
      'p',
      {},
      h('code', {}, t.task.command.join(' ')),
      ' — session ',
      link(sessionHref(t.task.session), t.task.session),
      `, ${t.task.endReason ?? t.task.status}, exit ${t.task.exitCode ?? '-'}`,
    ),
    chainLine(t),
    ...requests,
    h('h2', {}, 'Timeline (grouped)'),
    timeline(t),
    h('h2', {}, 'Change set'),
    changes,
  );
  await changeSet(id, changes, 0);
}

const DECISIONS = {
  once: ['Allow once', 'allowed once'],
  cell: ['Allow for this cell', 'allowed for this cell'],
  deny: ['Deny', 'denied'],
} as const;

/** A running cell's refused destinations, each answerable: allow once, for this cell, deny. */
function requestsBox(id: string, groups: TaskPage['groups']): HTMLElement[] {
  const msg = messageBox('req-msg');
  const list = h('tbody');
  for (const g of groups.filter((x) => x.type === 'net.denied')) {
    const cut = g.key.lastIndexOf(':');
    const host = g.key.slice(0, cut);
    const port = g.key.slice(cut + 1);
    const buttons = (['once', 'cell', 'deny'] as const).map((decision) => {
      const b = h(
        'button',
        { 'data-dest': g.key, 'data-decision': decision },
        DECISIONS[decision][0],
      );
      b.addEventListener('click', () => {
        const q = new URLSearchParams({ host, port, decision });
        api<{ decided: keyof typeof DECISIONS }>(
          `/api/tasks/${encodeURIComponent(id)}/egress?${q}`,
          'POST',
        ).then(
          (r) => msg.say(`${g.key}: ${DECISIONS[r.decided][1]}`),
          (e: Error) => msg.say(e.message),
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
    msg.el,
    h('table', { id: 'requests' }, list),
  ];
}
