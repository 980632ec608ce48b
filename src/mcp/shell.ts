// One persistent shell per cell for the MCP `run` tool: each call is a fresh `sh -c`, but it
// starts where the last one ended. The state (exported variables, working directory) lives
// in the cell's own /tmp, written by the task's shell, so nanocell never parses task output
// to learn it. The command travels in the environment, never spliced into the script.

const STATE = '/tmp/.nanocell-shell';
export const COMMAND_VAR = 'NANOCELL_MCP_COMMAND';

const RESTORE = [
  `__nc_cmd=$${COMMAND_VAR}; unset ${COMMAND_VAR}`,
  `if [ -f ${STATE}.env ]; then . ${STATE}.env; fi`,
  `if [ -f ${STATE}.cwd ]; then cd "$(cat ${STATE}.cwd)" 2>/dev/null || true; fi`,
];

/** argv of a foreground `run`: restores the state, runs, saves the state even on `exit`. */
export function runArgv(): string[] {
  const save = `__nc=$?; export -p > ${STATE}.env; pwd > ${STATE}.cwd; exit $__nc`;
  return ['sh', '-c', [...RESTORE, `trap '${save}' EXIT`, 'eval "$__nc_cmd"'].join('\n')];
}

/** argv of a background command: starts from the saved state but never writes it. */
export function backgroundArgv(): string[] {
  return ['sh', '-c', [...RESTORE, 'eval "$__nc_cmd"'].join('\n')];
}
