// Which module registers each verb. The CLI loads only the module of the verb it was given
// (one dynamic import, a chunk of the bundle), so `nanocell --version` or `nanocell ps` does
// not pay for loading the policy compiler, the workspace code or SQLite.
import type { Command } from 'commander';
import type { CliContext } from './context.js';

type Register = (program: Command, ctx: CliContext) => void;

interface VerbModule {
  verbs: readonly string[];
  /** The verbs open the audit store: SQLite is loaded with them. */
  store?: boolean;
  load(): Promise<Register>;
}

const MODULES: readonly VerbModule[] = [
  { verbs: ['run'], load: async () => (await import('./run.js')).registerRunCommand },
  { verbs: ['agent'], load: async () => (await import('./agent.js')).registerAgentCommand },
  { verbs: ['demo'], load: async () => (await import('./demo.js')).registerDemoCommand },
  { verbs: ['doctor'], load: async () => (await import('./doctor.js')).registerDoctorCommand },
  { verbs: ['gc'], store: true, load: async () => (await import('./gc.js')).registerGcCommand },
  { verbs: ['ps'], load: async () => (await import('./ps.js')).registerPsCommand },
  {
    verbs: ['tasks', 'logs', 'report', 'export', 'verify'],
    store: true,
    load: async () => (await import('./auditCommands.js')).registerAuditCommands,
  },
  {
    verbs: ['diff', 'apply', 'discard'],
    load: async () => (await import('./workspaceCommands.js')).registerWorkspaceCommands,
  },
  {
    verbs: ['exec', 'stop', 'kill'],
    load: async () => (await import('./live.js')).registerLiveCommands,
  },
  { verbs: ['ui'], load: async () => (await import('../ui/command.js')).registerUiCommand },
  {
    verbs: ['checkpoint', 'sessions'],
    load: async () => (await import('./sessionCommands.js')).registerSessionCommands,
  },
  { verbs: ['serve'], load: async () => (await import('./serve.js')).registerServeCommand },
  { verbs: ['mcp'], load: async () => (await import('./mcp.js')).registerMcpCommand },
  {
    verbs: ['k8s', 'proxy'],
    load: async () => (await import('./k8s.js')).registerK8sCommands,
  },
];

/** Options of the program itself that take a value (they come before the verb). */
const VALUE_OPTIONS = new Set(['--state-root']);

/** The verb of an argv (`node nanocell.mjs [global options] VERB ...`), if any. */
export function verbOf(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv[i + 1];
    if (!a.startsWith('-')) return a;
    if (VALUE_OPTIONS.has(a)) i++;
  }
  return undefined;
}

/**
 * The modules to load for `verb`: its own, or every one when there is none or it is unknown
 * (help lists every verb, and a typo's suggestion needs their names).
 */
export function modulesFor(verb: string | undefined): readonly VerbModule[] {
  const own = verb === undefined ? undefined : MODULES.find((m) => m.verbs.includes(verb));
  return own ? [own] : MODULES;
}
