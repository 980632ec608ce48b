// Text that came from a cell (file names, commands, hosts, output) shown to a person. Whatever
// a hostile task put there, what reaches the user's terminal is printable: control characters,
// escape sequences, C1 controls and bidirectional overrides become visible escapes, so nothing
// can move the cursor, write the clipboard, retitle the window or fake a line of a diff or a log.
// Lives in util because both the audit summary and the CLI views use it (lower layers never
// import from src/cli).

/**
 * C0 controls, DEL, C1 controls, and the Unicode format characters that reorder or hide text
 * (bidi embeddings, overrides and isolates, line/paragraph separators, zero-width marks).
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/gu;

/** What JSON.stringify leaves raw inside strings (it escapes C0 itself; newlines between values are ours). */
const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/gu;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\x1b': '\\e' };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.codePointAt(0)!;
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u{${code.toString(16).padStart(4, '0')}}`;
}

/** One line of printable text: every unsafe character becomes a visible escape (`\n`, `\e`, `\x07`). */
export function escapeText(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/** Like escapeText, but keeps tabs (file contents in a diff). */
export function escapeContent(text: string): string {
  return text.replace(UNSAFE, (c) => (c === '\t' ? c : escapeChar(c)));
}

/** True when the text would be shown changed by escapeText. */
function hasUnsafe(text: string): boolean {
  UNSAFE.lastIndex = 0;
  const r = UNSAFE.test(text);
  UNSAFE.lastIndex = 0;
  return r;
}

/**
 * A path for a header line, quoted like git does when it holds anything unusual: an unsafe
 * character, a quote, a backslash or a leading/trailing space. A plain path stays as it is.
 */
export function quotePath(p: string): string {
  if (!hasUnsafe(p) && !/["\\]/.test(p) && p.trim() === p) return p;
  return `"${escapeText(p.replace(/\\/g, '\\\\').replace(/"/g, '\\"'))}"`;
}

/** Every string inside a JSON-like value passed through escapeText (for text views). */
export function escapeDeep<T>(value: T): T {
  if (typeof value === 'string') return escapeText(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => escapeDeep(v)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, escapeDeep(v)]),
    ) as T;
  }
  return value;
}

/**
 * JSON for a terminal or a pipe: JSON.stringify already escapes C0 controls; this also writes
 * C1 controls and bidi/format characters as \uXXXX, which is still the same JSON value.
 */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(
    JSON_UNSAFE,
    (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`,
  );
}

/**
 * A command line for display: arguments with spaces, quotes or unsafe characters are quoted.
 * Backslashes are kept as they are so that formatting already escaped text changes nothing.
 */
export function formatCommand(argv: string[]): string {
  return argv
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `"${escapeText(a).replace(/"/g, '\\"')}"`))
    .join(' ');
}
