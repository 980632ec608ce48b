// A change set's git history as text: the `# ` block `nanocell diff` shows, the one-line
// facts the audit trail records, and the commits that touch paths hidden from the cell.
// Names and subjects come from the cell, so control characters are escaped.

export interface GitCommitSummary {
  hash: string;
  author: string;
  subject: string;
  files: Array<{ status: 'A' | 'M' | 'D' | 'T'; path: string; hidden: boolean }>;
}

interface GitRefChange {
  ref: string;
  old?: string;
  new?: string;
}

export interface GitHistorySummary {
  /** Project-relative git dir ('.git', 'vendor/x/.git'). */
  gitDir: string;
  commits: GitCommitSummary[];
  moreCommits: number;
  refs: GitRefChange[];
  indexChanged: boolean;
  objectFiles: number;
  /** Other files of the git dir the change set touches (logs, COMMIT_EDITMSG, ...). */
  other: string[];
  /** Why the history could not be read, when it could not. */
  error?: string;
}

const short = (v: string | undefined) => (v && !v.startsWith('→') ? v.slice(0, 12) : v?.slice(2));

/** Control characters shown as \xNN: names and subjects come from the cell. */
export function esc(s: string): string {
  return s.replace(
    // eslint-disable-next-line no-control-regex
    /[\x00-\x1f\x7f-\x9f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

const WORDS = { A: 'adds', M: 'modifies', D: 'deletes', T: 'changes the type of' } as const;

/** The summaries as text, one block per git dir; `# ` lines so a diff reader can skip them. */
export function renderGitHistory(list: GitHistorySummary[]): string {
  let out = '';
  for (const s of list) {
    out += `# git history of ${esc(s.gitDir)} (what applying the change set would do; object files are not listed)\n`;
    if (s.error) out += `#   cannot read the new history: ${esc(s.error)}\n`;
    for (const c of s.commits) {
      out += `#   commit ${c.hash.slice(0, 12)}  ${esc(c.author)}  ${esc(c.subject)}\n`;
      for (const f of c.files) {
        const warn =
          f.hidden && f.status !== 'A'
            ? '   <- hidden from the cell: the task never saw this file'
            : '';
        out += `#     ${WORDS[f.status]} ${esc(f.path)}${warn}\n`;
      }
    }
    if (s.moreCommits) out += `#   ... and ${s.moreCommits} more commit(s)\n`;
    for (const r of s.refs) {
      const name = esc(r.ref);
      if (!r.old) out += `#   ${refWord(r.ref)} created: ${name} at ${esc(short(r.new)!)}\n`;
      else if (!r.new)
        out += `#   ${refWord(r.ref)} deleted: ${name} (was ${esc(short(r.old)!)})\n`;
      else
        out += `#   ${refWord(r.ref)} moved: ${name} ${esc(short(r.old)!)} -> ${esc(short(r.new)!)}\n`;
    }
    if (s.indexChanged)
      out +=
        "#   the index (staging area) changed; in it, hidden tracked paths carry skip-worktree (the cell's view): after applying it, clear that with git update-index --no-skip-worktree -- PATHS\n";
    if (s.objectFiles)
      out += `#   ${s.objectFiles} object file(s) (the content of the commits above)\n`;
    if (s.other.length) {
      const shown = s.other.slice(0, 10).map(esc).join(', ');
      out += `#   other git files: ${shown}${s.other.length > 10 ? ` (+${s.other.length - 10} more)` : ''}\n`;
    }
  }
  return out;
}

function refWord(ref: string): string {
  if (ref === 'HEAD') return 'HEAD (checked-out branch)';
  if (ref.startsWith('refs/heads/')) return 'branch';
  if (ref.startsWith('refs/tags/')) return 'tag';
  return 'ref';
}

/** One line per fact, for the audit trail's fs.change events (the report's "Changed"). */
export function gitHistoryLines(list: GitHistorySummary[]): string[] {
  return renderGitHistory(list)
    .split('\n')
    .filter((l) => l.startsWith('#   '))
    .map((l) => l.slice(4).trim());
}

/** True when a commit of the summary deletes or modifies a path hidden from the cell. */
export function touchesHidden(list: GitHistorySummary[]): string[] {
  return list.flatMap((s) =>
    s.commits.flatMap((c) =>
      c.files
        .filter((f) => f.hidden && f.status !== 'A')
        .map((f) => `${c.hash.slice(0, 12)} ${WORDS[f.status]} ${f.path}`),
    ),
  );
}
