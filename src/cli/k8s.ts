// `nanocell k8s render` and `nanocell proxy --serve`: the Kubernetes backend's commands.
// Thin: parsing and printing over src/k8s and src/net/tenants.
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import YAML from 'yaml';
import { loadPolicyFile, resolvePolicy } from '../policy/load.js';
import type { PolicyFile } from '../policy/schema.js';
import { presetLayer, PRESETS } from '../k8s/presets.js';
import { K8S_DEGRADABLE_CONTROLS } from '../k8s/mapping.js';
import { renderShape, type Rendered } from '../k8s/render.js';
import { NanocellError } from '../util/errors.js';
import type { CliContext } from './context.js';
import type { K8sRunOpts } from '../task/args/k8sOptions.js';
import type { K8sDoctorOptions } from '../k8s/doctor.js';
import { registerProxyCommand } from './proxyServe.js';
import { policyFromFlags } from '../task/args/policyFromFlags.js';
import { applyChangeSet } from '../workspace/apply.js';
import { discardChangeSet } from '../workspace/discard.js';

const collectList = (v: string, prev: string[] = []) => [
  ...prev,
  ...v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
];

interface RenderOpts {
  policy?: string;
  preset: string;
  shape?: string;
  namespace: string;
  image?: string;
  proxyImage?: string;
  replicas: string;
  runtimeClass?: string;
  arch: 'x86_64' | 'aarch64';
  allowDegraded?: string[];
  output?: string;
}

export function registerK8sCommands(program: Command, ctx: CliContext): void {
  const k8s = program.command('k8s').description('run cells on Kubernetes (agent-sandbox)');
  k8s
    .command('render')
    .description('print the Kubernetes objects of a sandbox shape for a policy')
    .option('--policy <file>', 'policy file (YAML or JSON), layered over the preset')
    .option('--preset <name>', `shipped shape (${Object.keys(PRESETS).join(', ')})`, 'default')
    .option('--shape <name>', 'name of the template and warm pool (default: the preset name)')
    .option('--namespace <ns>', 'namespace of the objects', 'nanocell')
    .option(
      '--image <ref>',
      'cell image: the toolchain under /usr and nanocell init at /.nanocell/init',
    )
    .option(
      '--proxy-image <ref>',
      'image with the nanocell CLI for the proxy tier (default: --image)',
    )
    .option('--replicas <n>', 'warm sandboxes to keep', '2')
    .option(
      '--runtime-class <name>',
      'RuntimeClass (default: gvisor for runsc, cluster default otherwise)',
    )
    .addOption(
      new Option('--arch <arch>', 'node architecture of the seccomp profile')
        .choices(['x86_64', 'aarch64'])
        .default(process.arch === 'arm64' ? 'aarch64' : 'x86_64'),
    )
    .option(
      '--allow-degraded <control>',
      'accept a control the cluster cannot enforce (repeatable, or a,b)',
      collectList,
    )
    .option('-o, --output <dir>', 'write one file per object (and the seccomp profile) here')
    .action((opts: RenderOpts) => {
      const rendered = renderFromOpts(opts);
      for (const d of rendered.degradations) {
        process.stderr.write(`nanocell: degraded ${d.control}: ${d.reason}\n`);
      }
      if (opts.output) writeRendered(path.resolve(opts.output), rendered);
      else process.stdout.write(toYaml(rendered));
    });
  registerProxyCommand(program, ctx);
}

export function renderFromOpts(opts: RenderOpts): Rendered {
  if (!opts.image) {
    throw new NanocellError(
      'k8s render needs --image',
      'pass the cell image, e.g. --image registry.example/nanocell-cell:0.1',
      'USAGE',
    );
  }
  const layers: PolicyFile[] = [presetLayer(opts.preset)];
  if (opts.policy) layers.push(loadPolicyFile(path.resolve(opts.policy)));
  const replicas = Number(opts.replicas);
  return renderShape({
    policy: resolvePolicy(...layers),
    shape: opts.shape ?? opts.preset,
    namespace: opts.namespace,
    image: opts.image,
    proxyImage: opts.proxyImage,
    replicas,
    runtimeClass: opts.runtimeClass,
    arch: opts.arch,
    allowDegraded: opts.allowDegraded ?? [],
  });
}

export function toYaml(r: Rendered): string {
  return r.objects.map((o) => YAML.stringify(o, { lineWidth: 0 })).join('---\n');
}

function writeRendered(dir: string, r: Rendered): void {
  fs.mkdirSync(dir, { recursive: true });
  const files: [string, string][] = r.objects.map((o, i) => [
    `${String(i).padStart(2, '0')}-${o.kind.toLowerCase()}-${o.metadata.name}.yaml`,
    YAML.stringify(o, { lineWidth: 0 }),
  ]);
  files.push([r.seccomp.file, r.seccomp.json]);
  for (const [name, text] of files) {
    // Written beside and renamed: a symlink planted at the name is replaced, never followed.
    const tmp = path.join(dir, `.${name}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, text, { flag: 'wx', mode: 0o644 });
    fs.renameSync(tmp, path.join(dir, name));
  }
}

// ---- run --backend k8s -------------------------------------------------------------------

export async function runOnK8s(
  command: string[],
  opts: K8sRunOpts,
  ctx: CliContext,
): Promise<number> {
  // The Kubernetes-only controls are the backend's; the rest go into the policy as locally.
  const k8sOnly = new Set<string>(K8S_DEGRADABLE_CONTROLS);
  const accepted = (opts.allowDegraded ?? []).flatMap((c) => c.split(',')).filter(Boolean);
  const layers: PolicyFile[] = [];
  if (opts.policy) layers.push(loadPolicyFile(path.resolve(opts.policy)));
  layers.push(policyFromFlags({ ...opts, allowDegraded: accepted.filter((c) => !k8sOnly.has(c)) }));
  const policy = resolvePolicy(...layers);
  const workspace = path.resolve(opts.workspace ?? process.cwd());
  const { connectK8s } = await import('../k8s/client.js');
  const { runK8sTask } = await import('../k8s/run.js');
  const api = await connectK8s({ kubeconfig: opts.kubeconfig, context: opts.context });
  const token = process.env.NANOCELL_PROXY_CONTROL_TOKEN;
  // As locally: the first signal kills the task and still collects its change set; a second
  // one gives the collection up. Either way the claim is deleted before nanocell exits.
  const abort = new AbortController();
  const abandon = new AbortController();
  const onSignal = () => {
    if (!abort.signal.aborted) return abort.abort();
    if (abandon.signal.aborted) return;
    process.stderr.write('nanocell: giving up the change set; deleting the claim\n');
    abandon.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  try {
    const r = await runK8sTask({
      api,
      namespace: opts.namespace ?? 'nanocell',
      shape: opts.shape ?? 'default',
      policy,
      workspace,
      command,
      stateRoot: ctx.stateRoot(),
      session: opts.session,
      allowDegraded: accepted.filter((c) => k8sOnly.has(c)),
      ...(opts.proxyControl && token ? { tier: { control: opts.proxyControl, token } } : {}),
      stdout: process.stdout,
      stderr: process.stderr,
      abort: abort.signal,
      abandonChanges: abandon.signal,
      onEvent: (e) => {
        if (!opts.quiet && e.type === 'claim.ready')
          process.stderr.write(`nanocell: sandbox ${e.pod} claimed (${e.claim})\n`);
      },
    });
    const dir = `${ctx.stateRoot()}/changes/${r.taskId}`;
    const n = r.changes ? r.changes.changes.length + r.changes.more : 0;
    if (opts.discard) discardChangeSet(dir);
    else if (n > 0 && opts.apply) {
      const applied = applyChangeSet(dir, workspace);
      if (!opts.quiet)
        process.stderr.write(`nanocell: applied ${applied.applied} change(s) to ${workspace}\n`);
    } else if (n > 0 && !opts.quiet) {
      process.stderr.write(
        `nanocell: changes kept as change set ${r.taskId}; review with \`nanocell diff ${r.taskId}\`\n`,
      );
    }
    if (r.endReason === 'timeout') process.stderr.write(`nanocell: task ${r.taskId} timed out\n`);
    return r.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}

// ---- doctor --backend k8s ------------------------------------------------------------------

export function addK8sDoctorOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--backend <name>', 'what to check').choices(['local', 'k8s']).default('local'),
    )
    .option('--namespace <ns>', 'k8s: namespace of the shapes and the proxy tier', 'nanocell')
    .option('--shape <name>', 'k8s: the shape whose NetworkPolicy the canary tests', 'default')
    .option('--runtime-class <name>', 'k8s: RuntimeClass to check')
    .option('--canary-image <ref>', 'k8s: image with node for the NetworkPolicy canary')
    .option('--kubeconfig <file>', 'k8s: kubeconfig')
    .option('--context <name>', 'k8s: kubeconfig context');
}

export async function runK8sDoctorCommand(
  opts: K8sDoctorOptions & { json?: boolean },
): Promise<void> {
  const { runK8sDoctor } = await import('../k8s/doctor.js');
  const { printChecks } = await import('./printChecks.js');
  printChecks(await runK8sDoctor(opts), opts.json);
}
