// A task's change set: a page of its files, each with a box to choose it, what an earlier
// "Apply chosen" wrote already, the refused entries, the actions (apply all, apply chosen,
// discard, save patch) and a side-by-side diff of the file clicked.
import { api, h, messageBox, row } from './dom.js';

interface ChangesPage {
  exists: boolean;
  fate?: string;
  status?: string;
  reason?: string;
  total?: number;
  offset?: number;
  entries?: { path: string; kind: string; type: string; size?: number }[];
  refused?: { path: string; reason: string }[];
  applied?: string[];
  appliedTotal?: number;
}

const base = (id: string) => `/api/tasks/${encodeURIComponent(id)}`;

function fileList(id: string, c: ChangesPage, view: HTMLElement): HTMLElement {
  const files = h('ul', { class: 'files', id: 'files' });
  for (const e of c.entries ?? []) {
    const pick = h('input', { type: 'checkbox', class: 'pick', 'data-path': e.path });
    pick.addEventListener('click', (ev) => ev.stopPropagation());
    const li = h(
      'li',
      { 'data-path': e.path },
      pick,
      ` ${e.kind} ${e.type} `,
      h('code', {}, e.path),
    );
    li.addEventListener('click', () => {
      for (const x of files.children) x.classList.remove('sel');
      li.classList.add('sel');
      void showDiff(id, e.path, view);
    });
    files.append(li);
  }
  return files;
}

function chosenPaths(files: HTMLElement): string[] {
  return [...files.querySelectorAll<HTMLInputElement>('input.pick')]
    .filter((b) => b.checked)
    .map((b) => b.dataset.path!);
}

export async function changeSet(
  id: string,
  box: HTMLElement,
  offset: number,
  note?: string,
): Promise<void> {
  const c = await api<ChangesPage>(`${base(id)}/changes?offset=${offset}`);
  if (!c.exists) return void box.replaceChildren(h('p', { id: 'fate' }, c.fate ?? ''));
  const msg = messageBox('msg');
  const view = h('div', { id: 'diff' });
  const files = fileList(id, c, view);
  const act = async (verb: 'apply' | 'discard', only: string[] = []) => {
    const q = new URLSearchParams(only.map((p) => ['only', p]));
    try {
      const r = await api<{ applied?: number; left?: number }>(`${base(id)}/${verb}?${q}`, 'POST');
      if (verb === 'discard') return msg.say('discarded');
      const said = `applied ${r.applied} change(s)${r.left ? `; ${r.left} left` : ''}`;
      // Some left: show the rest, with what is applied now marked.
      if (r.left) return void (await changeSet(id, box, 0, said));
      msg.say(said);
    } catch (e) {
      msg.say((e as Error).message);
    }
  };
  const button = (bid: string, label: string, f: () => void) => {
    const b = h('button', { id: bid }, label);
    b.addEventListener('click', f);
    return b;
  };
  const actions = h(
    'div',
    {},
    button('apply', 'Apply all', () => void act('apply')),
    button('apply-chosen', 'Apply chosen', () => {
      const only = chosenPaths(files);
      if (!only.length) return msg.say('choose the files to apply first');
      void act('apply', only);
    }),
    button('discard', 'Discard', () => void act('discard')),
    h('a', { id: 'patch', href: `${base(id)}/patch`, download: `${id}.patch` }, 'Save patch'),
  );
  const more: HTMLElement[] = [];
  const shownTo = (c.offset ?? 0) + (c.entries?.length ?? 0);
  if ((c.total ?? 0) > shownTo)
    more.push(button('next', 'next page', () => void changeSet(id, box, shownTo)));
  const applied = (c.applied ?? []).map((p) =>
    h('li', { class: 'applied' }, 'applied: ', h('code', {}, p)),
  );
  if ((c.appliedTotal ?? 0) > applied.length)
    applied.push(
      h('li', { class: 'applied' }, `… and ${(c.appliedTotal ?? 0) - applied.length} more`),
    );
  const refused = (c.refused ?? []).map((r) =>
    h('li', { class: 'denied' }, 'refused: ', h('code', {}, r.path), ` (${r.reason})`),
  );
  box.replaceChildren(
    h(
      'p',
      {},
      `${c.total} change(s) to apply, status ${c.status ?? ''}${c.reason ? `: ${c.reason}` : ''}`,
    ),
    actions,
    msg.el,
    files,
    ...more,
    h('ul', { id: 'applied' }, ...applied),
    h('ul', {}, ...refused),
    view,
  );
  if (note) msg.say(note);
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
  const d = await api<FileDiff>(`${base(id)}/diff?path=${encodeURIComponent(path)}`);
  const title = h('h2', {}, `${d.kind}: `, h('code', {}, d.path));
  const say = (s: string) => view.replaceChildren(title, h('p', {}, s));
  if (d.binary) return say('binary file (or too large to show)');
  if (d.error) return say(`cannot read the project's file: ${d.error}`);
  if (d.type !== 'file') return say(`${d.type}${d.target ? ` -> ${d.target}` : ''}`);
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
