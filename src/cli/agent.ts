// `nanocell agent NAME [-- ARGS...]`: a coding agent in a new cell, set up by its preset
// (presets/NAME.yaml): its binary, its API host and nothing else, its key as a placeholder, its
// state dir kept per project. A terminal inside the cell when stdin is one, as `run -t`.
// `nanocell agent --list` shows the presets and whether this host has each binary.
import type { Command } from 'commander';
import { findAgentBinary } from '../host/agentBinary.js';
import { invokingHome } from '../host/hostPaths.js';
import { loadPreset, presetNames } from '../policy/presets.js';
import { NanocellError } from '../util/errors.js';
import type { CliContext } from './context.js';
import { runCommand } from './run.js';
import { runOptions, type RunOpts } from '../task/args/runInputs.js';

interface AgentOpts extends RunOpts {
  list?: boolean;
}

export function registerAgentCommand(program: Command, ctx: CliContext): void {
  runOptions(
    program
      .command('agent')
      .description("run a coding agent in a new cell with its preset's binary, network and key")
      .usage('[options] NAME [-- ARGS...]  |  --list')
      .argument('[name]', 'the preset: claude, codex, gemini, aider (see --list)')
      .argument('[args...]', "the agent's own arguments, after --")
      .option('--list', 'list the presets: binary found or not, domains, secrets'),
  ).action(async (name: string | undefined, args: string[], opts: AgentOpts) => {
    if (opts.list) return void process.stdout.write(listPresets());
    if (!name) {
      throw new NanocellError(
        'nanocell agent needs a preset name',
        `use one of ${presetNames().join(', ')} (nanocell agent --list)`,
        'USAGE',
      );
    }
    const { preset } = loadPreset(name);
    // A terminal when the user is at one; -i alone (or a pipe) keeps plain stdin.
    const tty = opts.tty ?? (process.stdin.isTTY === true && process.stdout.isTTY === true);
    const command = [preset.binary, ...preset.args, ...args];
    process.exitCode = await runCommand(command, { ...opts, tty, preset: name }, ctx);
  });
}

/** One block per preset: the binary as found (or where it was looked for), domains, secrets. */
function listPresets(): string {
  const home = invokingHome();
  const tilde = (p: string) => (p.startsWith(`${home}/`) ? `~${p.slice(home.length)}` : p);
  const out: string[] = [];
  for (const name of presetNames()) {
    const { preset, layer } = loadPreset(name);
    const search = findAgentBinary(preset, home);
    const binary = search.found
      ? tilde(search.found.path)
      : `not found (install: ${preset.install})`;
    const secrets = (layer.secrets ?? []).map(
      (s) => `${s.name}@${s.hosts.join(',')}${preset.optionalSecrets?.includes(s.name) ? '?' : ''}`,
    );
    out.push(
      `${name}  ${preset.description}`,
      `  binary:   ${binary}`,
      `  domains:  ${(layer.network?.allow ?? []).join(', ') || '(none)'}`,
      `  secrets:  ${secrets.join(', ') || '(none)'}`,
      `  sandbox:  ${preset.innerSandbox.mode === 'off' ? 'its own switched off' : 'none of its own'} (${preset.innerSandbox.how})`,
      `  state:    ~/${preset.config.dir} in the cell, kept per project`,
    );
  }
  return `${out.join('\n')}\n`;
}
