// One owner for the Kubernetes names nanocell depends on: API groups and versions of the
// agent-sandbox CRDs, the labels that tie a shape's objects together, and the paths inside
// a sandbox pod. Pure data.
import { CELL_HOME, CELL_GID, CELL_UID } from '../plan/layout.js';

const SANDBOX_GROUP = 'agents.x-k8s.io';
export const EXTENSIONS_GROUP = 'extensions.agents.x-k8s.io';
/** The only version nanocell speaks; upstream v1.0 serves nothing else. */
export const API_VERSION = 'v1beta1';
export const EXTENSIONS_API = `${EXTENSIONS_GROUP}/${API_VERSION}`;

export const CRDS = {
  sandboxes: `sandboxes.${SANDBOX_GROUP}`,
  sandboxTemplates: `sandboxtemplates.${EXTENSIONS_GROUP}`,
  sandboxClaims: `sandboxclaims.${EXTENSIONS_GROUP}`,
  sandboxWarmPools: `sandboxwarmpools.${EXTENSIONS_GROUP}`,
} as const;

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  component: 'nanocell.dev/component',
  shape: 'nanocell.dev/shape',
} as const;
export const MANAGER = 'nanocell';

/** On a SandboxTemplate: the digest of the policy it was rendered from, and what it degrades. */
export const ANNOTATIONS = {
  policyDigest: 'nanocell.dev/policy-digest',
  degraded: 'nanocell.dev/degraded',
} as const;

/** Paths inside the sandbox pod; the same as in a local cell where a local cell has them. */
export const POD = {
  uid: CELL_UID,
  gid: CELL_GID,
  home: CELL_HOME,
  workspace: '/workspace',
  runtimeDir: '/.nanocell',
  init: '/.nanocell/init',
  /** init's control socket; each session attaches to it over pods/exec (see docs/kubernetes.md). */
  controlSocket: '/run/nanocell/control.sock',
  /** Where the seccomp profile sits below the kubelet's seccomp root on every node. */
  seccompDir: 'nanocell',
} as const;

/** The container that runs init; every exec targets it. */
export const CELL_CONTAINER = 'cell';

/** The proxy tier's ports: egress for the cells, control for supervisors. */
export const PROXY_PORTS = { egress: 3128, control: 3129 } as const;
