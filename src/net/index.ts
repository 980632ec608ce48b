// Public API of the egress area: rules (pure), the per-cell proxy and the cell's proxy env.
export {
  checkAddress,
  compileNetRules,
  decideHost,
  describeRules,
  pinnedAddress,
  type Decision,
  type NetRules,
} from './rules.js';
export {
  MAX_HEADER_BYTES,
  startEgressProxy,
  type EgressProxy,
  type EgressProxyOptions,
  type ProxyEvent,
  type ProxyStats,
} from './proxy.js';
export { CELL_NO_PROXY, proxyEnv } from './env.js';
export { systemResolver, type Resolver } from './dial.js';
