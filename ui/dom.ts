// The page's building blocks. Everything a task wrote (file names, commands, output, hosts)
// reaches the page through textContent only, with control characters shown as escapes:
// nothing recorded is ever parsed as markup or run.

const UNSAFE =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/gu;
export const shown = (s: unknown): string =>
  String(s ?? '').replace(UNSAFE, (c) =>
    c === '\x1b' ? '\\e' : `\\x${c.codePointAt(0)!.toString(16).padStart(2, '0')}`,
  );

export type Child = Node | string;
export function h(
  tag: string,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children)
    el.append(typeof c === 'string' ? document.createTextNode(shown(c)) : c);
  return el;
}

/** A call to the dashboard's API; actions carry the header only the page sends. */
export async function api<T>(path: string, method = 'GET'): Promise<T> {
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

export function row(cell: 'td' | 'th', values: Child[]): HTMLElement {
  return h('tr', {}, ...values.map((v) => h(cell, {}, v)));
}

export function link(href: string, label: string): HTMLElement {
  return h('a', { href }, label);
}

export const taskHref = (id: string) => `#/task/${encodeURIComponent(id)}`;
export const sessionHref = (name: string) => `#/session/${encodeURIComponent(name)}`;

/** A message line that stays hidden until something is said. */
export function messageBox(id: string): { el: HTMLElement; say(s: string): void } {
  const el = h('div', { class: 'msg', id });
  el.hidden = true;
  return {
    el,
    say(s: string) {
      el.hidden = false;
      el.textContent = shown(s);
    },
  };
}

/** A usage bar: `used` against `limit`, with the figures as text beside it. */
export function meter(
  id: string,
  used: number | null,
  limit: number | null,
  text: string,
): HTMLElement {
  const bar = h('span', { class: 'bar' });
  const fill = h('span', { class: 'fill' });
  const share = used !== null && limit ? Math.min(1, used / limit) : 0;
  fill.style.width = `${Math.round(share * 100)}%`;
  if (share >= 0.9) fill.classList.add('high');
  bar.append(fill);
  return h('span', { class: 'meter', 'data-meter': id }, bar, text);
}
