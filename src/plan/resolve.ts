// Resolve: policy + flags + host facts -> a validated, immutable description of the cell.
// Every refusal of a cell happens here, before anything is created, mounted or listened on:
// a bad network.allow or exec.allow entry, a forbidden syscall, a project dir the cell cannot
// show, a control the host cannot apply and the policy did not let degrade. Reads the host
// (stat, realpath), changes nothing.
import { requireNft } from '../net/capture.js';
import type { HostFacts } from '../host/facts.js';
import { compileNetRules, hasEgress, type NetRules } from '../net/rules.js';
import type { HostMountRequest, Policy } from '../policy/defaults.js';
import { invokingHome, probeHostPath } from '../host/hostPaths.js';
import { findToolchains, toolchainPlaces } from '../host/toolchains.js';
import { findHostConfig, readConfigFile } from '../host/hostConfigFiles.js';
import { planHostConfig, type HostConfigPlan } from './hostConfig.js';
import { resolveExecAllow } from './execAllow.js';
import { needsMapGuard, planExecRule, type ExecMounts } from './execRule.js';
import { checkHostMounts, expandMountPath, type HostMount } from './hostMounts.js';
import { planDegradations, type BenchSwitches, type Degradation } from './plan.js';
import { resolveProjectDir, type ProjectDir } from './projectDir.js';
import { CellSeccomp, type CellSeccompPlan } from './seccomp.js';
import { planToolchains, type ToolchainPlan } from './toolchains.js';
import { findAgentBinary } from '../host/agentBinary.js';
import { planAgent, type AgentPlan } from './agent.js';

export interface ResolveInput {
  policy: Policy;
  host: HostFacts;
  /** The project dir as the user gave it. */
  workspace: string;
  /** Extra `network.allow` entries (the CLI's --allow-net). */
  extraAllowNet?: readonly string[];
  benchOff?: BenchSwitches;
  /** For the host-mount rules: the state root and every host home directory. */
  stateRoot: string;
  homes: readonly string[];
}

export interface ResolvedCell {
  readonly policy: Policy;
  readonly host: HostFacts;
  readonly project: ProjectDir;
  readonly netRules: NetRules;
  /** The policy allows some destination, so the cell gets a proxy. */
  readonly egress: boolean;
  /** Read-only host paths, checked (the policy's mounts, then the toolchains'). */
  readonly hostMounts: readonly HostMount[];
  /** Toolchain presets: what was found, their caches and env. */
  readonly toolchains: Readonly<ToolchainPlan>;
  /** The agent preset the policy names: its binary, install mounts, state dir and env. */
  readonly agent: Readonly<AgentPlan> | undefined;
  /** Host package-manager configuration carried in, credentials stripped. */
  readonly hostConfig: Readonly<HostConfigPlan>;
  /** Concrete paths the task may execute (Landlock). */
  readonly execAllow: readonly string[];
  /** Which writable places are mounted executable (execRule.ts). */
  readonly execMounts: Readonly<ExecMounts>;
  /** The seccomp profile without its per-cell listener path; undefined when a bench turned it off. */
  readonly seccomp: CellSeccompPlan | undefined;
  /**
   * With a seccomp listener the monitor learns the cell's pid before init runs, so it makes the
   * proxy's port inside the cell's own network namespace and no relay is needed. Without one
   * (gVisor, or seccomp off for a benchmark), init bridges the port to a unix socket.
   */
  readonly proxyOnCellLoopback: boolean;
  /** The host's nft, for transparent capture: set when there is egress and the proxy is on the
   * cell's loopback (a host without nft refuses such a cell here). */
  readonly captureNft: string | undefined;
  /** Opted-in degradations and bench switches, as planCell will report them. */
  readonly degradations: readonly Degradation[];
  readonly benchOff: Readonly<BenchSwitches>;
}

export function resolveCell(i: ResolveInput): ResolvedCell {
  const { host } = i;
  const benchOff = { ...i.benchOff };
  const project = resolveProjectDir(i.workspace);
  // Rules are compiled even when nothing is allowed, so a bad entry is always an error.
  const netRules = compileNetRules(i.policy.network, [...(i.extraAllowNet ?? [])]);
  const home = invokingHome();
  const { found, missing } = findToolchains(i.policy.toolchains, home);
  const toolchains = planToolchains(found, missing, toolchainPlaces, i.policy.runtime.name);
  const agent = resolveAgent(i.policy, home, toolchains);
  // An optional secret of the agent's that the host has no value for is left out.
  const policy = agent ? { ...i.policy, secrets: agent.secrets } : i.policy;
  const hostMounts = resolveHostMounts(i, project, home, [
    ...policy.mounts,
    ...toolchains.mounts,
    ...(agent?.mounts ?? []),
  ]);
  const hostConfig = planHostConfig(
    policy.hostConfig,
    (tool) => findHostConfig(tool, home),
    (p) => readConfigFile(p, 'CA file'),
  );
  const execRule = planExecRule(
    [
      ...resolveExecAllow(policy.exec.allow, project),
      // A mount with exec: true is executable at its cell path (and only there).
      ...hostMounts.filter((m) => m.exec).map((m) => m.cell),
    ],
    project,
    policy.exec.scratch,
  );
  const guardMappings = needsMapGuard({
    rule: execRule,
    workspace: project,
    noexecCodeDirs:
      hostMounts.some((m) => !m.exec) ||
      toolchains.caches.length > 0 ||
      (agent?.caches.length ?? 0) > 0,
  });
  const seccomp = CellSeccomp.plan({
    policy,
    host,
    guardMappings,
    disabled: benchOff.seccomp === true,
  });
  const { degradations } = planDegradations({
    policy,
    host,
    // Rootless cells mount the overlay in the cell; a bench's bind mount is host-side.
    workspaceMode: host.rootless && !benchOff.workspace ? 'cell-overlay' : 'host-overlay',
    seccomp: seccomp !== undefined,
    benchOff,
  });
  const egress = hasEgress(netRules);
  const proxyOnCellLoopback = seccomp?.monitor === true;
  // Frozen so that no later step (a bench switch, an acquire step) edits the plan it was given.
  return Object.freeze({
    policy,
    host,
    project,
    netRules,
    egress,
    hostMounts: Object.freeze(hostMounts.map((m) => Object.freeze(m))),
    toolchains: Object.freeze(toolchains),
    agent: agent && Object.freeze(agent),
    hostConfig: Object.freeze(hostConfig),
    execAllow: Object.freeze(execRule.paths),
    execMounts: Object.freeze(execRule.mounts),
    seccomp,
    proxyOnCellLoopback,
    captureNft: egress && proxyOnCellLoopback ? requireNft() : undefined,
    degradations: Object.freeze(degradations.map((d) => Object.freeze(d))),
    benchOff: Object.freeze(benchOff),
  });
}

function resolveAgent(policy: Policy, home: string, toolchains: ToolchainPlan) {
  if (!policy.agent) return undefined;
  return planAgent({
    preset: policy.agent,
    search: findAgentBinary(policy.agent, home),
    home,
    hostEnv: process.env,
    secrets: policy.secrets,
    ...(toolchains.env.PATH ? { toolchainPath: toolchains.env.PATH } : {}),
  });
}

/** Probes each requested host path (stat and realpath only), then applies the mount rules. */
function resolveHostMounts(
  i: ResolveInput,
  project: ProjectDir,
  home: string,
  requests: readonly HostMountRequest[],
): HostMount[] {
  if (!requests.length) return [];
  const facts = new Map(
    requests.map((m) => {
      const p = expandMountPath(m.host, home);
      return [p, probeHostPath(p, { mask: m.toolchain === true })] as const;
    }),
  );
  return checkHostMounts(
    requests,
    { home, homes: i.homes, stateRoot: i.stateRoot, workspace: project },
    facts,
  );
}
