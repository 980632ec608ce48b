// The options `run` takes for the Kubernetes backend. Apart from src/cli/k8s.ts because
// registering them must not load the Kubernetes code (YAML, the renderer, the workspace's apply),
// which a local or served run never uses: `run` imports src/cli/k8s.js only for --backend k8s.
import { Option, type Command } from 'commander';
import type { RunFlags } from './policyFromFlags.js';

export interface K8sRunOpts extends RunFlags {
  backend?: string;
  policy?: string;
  workspace?: string;
  session?: string;
  apply?: boolean;
  discard?: boolean;
  quiet?: boolean;
  shape?: string;
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  proxyControl?: string;
}

/** The options `run` takes for the Kubernetes backend (one call from src/cli/run.ts). */
export function addK8sRunOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--backend <name>', 'where the cell runs')
        .choices(['local', 'k8s'])
        .default('local'),
    )
    .option('--shape <name>', 'k8s: the warm pool to claim from', 'default')
    .addOption(
      new Option('--namespace <ns>', 'k8s: namespace of the shape')
        .env('NANOCELL_K8S_NAMESPACE')
        .default('nanocell'),
    )
    .option(
      '--kubeconfig <file>',
      'k8s: kubeconfig (default: KUBECONFIG, ~/.kube/config, in-cluster)',
    )
    .option('--context <name>', 'k8s: kubeconfig context')
    .addOption(
      new Option('--proxy-control <url>', 'k8s: the proxy tier control endpoint').env(
        'NANOCELL_PROXY_CONTROL',
      ),
    );
}
