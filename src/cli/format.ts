// Terminal output helpers shared by the CLI views: colour only on a TTY (never with NO_COLOR),
// aligned tables that fit the terminal, and compact times.
import { stripVTControlCharacters, styleText } from 'node:util';

export interface OutStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Colour when the stream is a terminal, unless NO_COLOR is set to anything non-empty. */
export function colorEnabled(stream: OutStream, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

type StyleName = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan';
export type Paint = Record<StyleName, (text: string) => string>;

export function paint(enabled: boolean): Paint {
  // The decision is ours (made for the stream we write to), so styleText must not second-guess
  // it against process.stdout.
  const style = (name: StyleName) => (text: string) =>
    enabled ? styleText(name, text, { validateStream: false }) : text;
  return {
    bold: style('bold'),
    dim: style('dim'),
    red: style('red'),
    green: style('green'),
    yellow: style('yellow'),
    cyan: style('cyan'),
  };
}

/** Width as the terminal shows it (escape sequences take no room). */
export function visibleWidth(text: string): number {
  return [...stripVTControlCharacters(text)].length;
}

/** A command in a table is cut here when no terminal width says otherwise. */
export const MAX_COMMAND_CHARS = 120;

export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
}

export interface TableOptions {
  header: string[];
  /** Columns aligned right (numbers). */
  right?: number[];
  /** Total width to fit, e.g. the terminal's columns; the last column is cut to fit. */
  maxWidth?: number;
  /** Applied to the header row after alignment. */
  headerStyle?: (text: string) => string;
}

/**
 * Aligned columns separated by two spaces. Cells may carry colour; widths ignore it. Only the
 * last column is truncated (it is the free text: a command), so every other column stays whole.
 */
export function table(rows: string[][], opts: TableOptions): string {
  const all = [opts.header, ...rows];
  const n = opts.header.length;
  const widths = Array.from({ length: n }, (_, i) =>
    Math.max(...all.map((r) => visibleWidth(r[i] ?? ''))),
  );
  const right = new Set(opts.right ?? []);
  const lines = all.map((row, r) => {
    const cells = Array.from({ length: n }, (_, i) => {
      const cell = row[i] ?? '';
      const pad = ' '.repeat(widths[i]! - visibleWidth(cell));
      if (i === n - 1) return right.has(i) ? pad + cell : cell;
      return right.has(i) ? pad + cell : cell + pad;
    });
    let line = cells.join('  ');
    if (opts.maxWidth !== undefined && visibleWidth(line) > opts.maxWidth) {
      const prefix = cells.slice(0, -1).join('  ');
      const room = opts.maxWidth - visibleWidth(prefix) - 2;
      line = `${prefix}  ${truncate(stripVTControlCharacters(cells[n - 1]!), room)}`;
    }
    line = line.trimEnd();
    return r === 0 && opts.headerStyle ? opts.headerStyle(line) : line;
  });
  return `${lines.join('\n')}\n`;
}

/** Local wall-clock time, `YYYY-MM-DD HH:MM:SS`. */
export function formatTimestamp(ms: number): string {
  const d = new Date(ms);
  const p = (v: number) => String(v).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Local time of day with milliseconds, for log lines. */
export function formatClock(ms: number): string {
  const d = new Date(ms);
  const p = (v: number, n = 2) => String(v).padStart(n, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** "45s ago", "3m ago", "2h ago", "4d ago". */
export function formatAge(ms: number, now: number = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}
