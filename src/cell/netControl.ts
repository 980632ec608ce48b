// Cell.setNetwork: a running cell's egress allowlist replaced, for connections from then on.
// The new list is read by the policy's own parser (policySchema, then compileNetRules), so a
// bad entry is the same one-line PolicyError a policy file gets, and nothing changes. The
// policy's deny list, cidrs and host pins stay: setNetwork replaces `network.allow` only
// (with the --allow-net extras and the user's grants, which were part of the list in force).
import type { CellEvent } from '../audit/cellEvents.js';
import { compileNetRules } from '../net/rules.js';
import type { Policy } from '../policy/defaults.js';
import { parsePolicy } from '../policy/load.js';
import type { CellNetwork } from './networkSetup.js';

/**
 * The `network.allow` entries in force, as entries setNetwork takes back (a user's grant from
 * the dashboard is its `host:port`).
 */
export function allowList(net: CellNetwork): string[] {
  return sources(net).map((s) => s.replace(/^user-(?:cell|once):/, ''));
}

/** The rule sources in force, grants marked (`user-cell:host:port`): what the audit shows. */
function sources(net: CellNetwork): string[] {
  return (net.rules?.allow ?? []).map((p) => p.source);
}

/**
 * Validates `allow`, puts it in force and returns the audit event saying what it replaced.
 * Throws (PolicyError, or a USAGE error for a cell without a proxy) before anything changes.
 */
export function replaceAllowList(
  net: CellNetwork,
  policy: Policy,
  allow: readonly string[],
): CellEvent {
  const doc = parsePolicy({ network: { allow } }, 'setNetwork');
  const rules = compileNetRules({ ...policy.network, allow: doc.network?.allow ?? [] });
  const before = sources(net);
  net.setRules(rules, { replace: true });
  return { type: 'net.rules', before, after: rules.allow.map((p) => p.source) };
}
