// The one table of how a refusal is told to the program that met it: the line a command's
// stderr gets (src/cell/denialNotes.ts) and the body of the proxy's 403 (src/net/proxyReplies.ts)
// both come from here, so the agent reads the same words whichever way it learns of a denial.
// Each line names what was refused and the policy key that would allow it; names from the cell
// (hosts, paths) are escaped, since a note lands on the user's terminal too.
import { SYSCALL_TABLE, type SyscallCategory } from '../seccomp/syscall-table.js';

const PREFIX = 'nanocell: blocked';
const MAX_NAME = 200;

/** Control characters, DEL and C1 shown as \xNN; long names cut (a note is one short line). */
function escapeDenialName(s: string): string {
  const shown = s.replace(
    // eslint-disable-next-line no-control-regex
    /[\x00-\x1f\x7f-\x9f\\]/g,
    (c) => (c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`),
  );
  return shown.length > MAX_NAME ? `${shown.slice(0, MAX_NAME)}...` : shown;
}

/**
 * Why the egress rules refused a destination, short, by the rule that decided (the long reason
 * from src/net/rules.ts repeats the host; the note names it once, up front).
 */
function egressWhy(rule: string, reason: string): string {
  if (rule === 'default-deny')
    return reason.startsWith('port ') ? 'port not in network.allow' : 'not in network.allow';
  if (rule.startsWith('deny:')) return `in network.deny "${escapeDenialName(rule.slice(5))}"`;
  if (rule === 'ip-literal') return 'IP address not in network.cidrs';
  if (rule.startsWith('special:')) return `${rule.slice(8)} address, not in network.cidrs`;
  if (rule === 'secret-misuse') return `a secret placeholder: ${escapeDenialName(reason)}`;
  return escapeDenialName(reason);
}

/** `nanocell: blocked connect to evil.example:443 (not in network.allow)`. */
export function egressDenialLine(d: {
  host: string;
  port: number;
  rule: string;
  reason: string;
}): string {
  const why = egressWhy(d.rule, d.reason);
  if (d.host === '') return `${PREFIX} a proxy request (${why})`;
  const host = d.host.includes(':') ? `[${d.host}]` : d.host;
  return `${PREFIX} connect to ${escapeDenialName(host)}:${d.port} (${why})`;
}

/** The cell's DNS stub refused a name (transparent capture). */
export function dnsDenialLine(d: { name: string; rule: string; reason: string }): string {
  return `${PREFIX} DNS lookup of ${escapeDenialName(d.name)} (${egressWhy(d.rule, d.reason)})`;
}

/** What a kind of syscall is, when the cell refuses it: the why of a syscall note. */
const CATEGORY_WHY: Partial<Record<SyscallCategory, string>> = {
  namespace: 'namespaces are not allowed',
  mount: 'mounts are not allowed',
  debug: 'tracing other processes is not allowed',
  kernel: 'kernel administration is not allowed',
  keyring: 'kernel keyrings are not allowed',
  security: 'changing security controls is not allowed',
  time: 'setting the clock is not allowed',
};

/** Syscalls the filter allows with some arguments only: what the refused ones were. */
const FILTERED_WHY: Readonly<Record<string, string>> = {
  clone: 'namespaces are not allowed',
  clone3: 'namespaces are not allowed',
  socket: 'this socket family or type is not allowed',
  socketpair: 'this socket family or type is not allowed',
  ioctl: 'TIOCSTI and TIOCLINUX (terminal input injection) are not allowed',
};

/**
 * Refusals a runtime probes for and falls back from without a word: a note for them would sit
 * on the stderr of every run of an ordinary tool (libuv, so every Node.js 22 process, tries
 * io_uring_setup and uses epoll when refused). The audit trail still records them.
 */
const PROBED_SYSCALLS = new Set(['io_uring_setup', 'io_uring_enter', 'io_uring_register']);

/** Whether a refused syscall is told on the command's stderr (denialNotes.ts). */
export function syscallDenialNoted(name: string): boolean {
  return !PROBED_SYSCALLS.has(name);
}

/** The monitor's exec guard says `VERB PATH: WHY`; its calls read as `blocked VERB PATH (WHY)`. */
const GUARDED_CALLS = new Set(['execve', 'execveat', 'mmap', 'memfd_create']);

/**
 * `nanocell: blocked exec /tmp/x (not in exec.allow)` for the exec guard's refusals,
 * `nanocell: blocked syscall unshare (namespaces are not allowed)` for the rest.
 */
export function syscallDenialLine(d: { name: string; detail?: string }): string {
  const cut = d.detail?.lastIndexOf(': ') ?? -1;
  if (GUARDED_CALLS.has(d.name) && d.detail && cut > 0) {
    const what = escapeDenialName(d.detail.slice(0, cut));
    // One level of parentheses: the guard's own aside becomes a clause.
    const why = d.detail.slice(cut + 2).replace(/ \((.*)\)$/, '; $1');
    return `${PREFIX} ${what} (${escapeDenialName(why)})`;
  }
  return `${PREFIX} syscall ${escapeDenialName(d.name)} (${syscallWhy(d.name)})`;
}

function syscallWhy(name: string): string {
  const row = Object.hasOwn(SYSCALL_TABLE, name) ? SYSCALL_TABLE[name] : undefined;
  const byCategory = row && CATEGORY_WHY[row.category];
  if (byCategory) return byCategory;
  const def = row?.default;
  if (def?.kind === 'filtered') return FILTERED_WHY[name] ?? 'not allowed with these arguments';
  if (def?.kind === 'not-needed') return `${def.reason}; syscalls.allow can allow it`;
  if (def?.kind === 'forbidden') return def.reason;
  // Allowed by default, so the policy's own syscalls.deny refused it.
  return row ? 'in syscalls.deny' : 'not allowed in a cell';
}
