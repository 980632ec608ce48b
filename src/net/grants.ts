// The user's answers to a running cell's refused egress (the dashboard's requests): allow a
// host:port once, for the rest of the cell, or deny it. A grant is one exact host and port
// added to the compiled rules; the address checks after resolution still apply (a grant never
// opens loopback, private or metadata ranges), and network.deny still wins.
import { PolicyError } from '../util/errors.js';
import { parseHostPattern } from './patterns.js';
import type { NetRules } from './rules.js';

export type EgressDecision = 'once' | 'cell' | 'deny';

/** The rule name an allowed connection carries when a grant decided it. */
function grantSource(host: string, port: number, scope: 'once' | 'cell'): string {
  return `user-${scope}:${host}:${port}`;
}

/** `rules` with one exact host:port allowed, and the grant's rule source; refuses patterns and IP literals. */
export function withGrant(
  rules: NetRules,
  host: string,
  port: number,
  scope: 'once' | 'cell',
): { rules: NetRules; source: string } {
  const p = parseHostPattern(`${host}:${port}`, 'network.allow');
  if (p.kind !== 'exact') {
    throw new PolicyError(
      `${JSON.stringify(host)} is not one host name; only a named host can be allowed from a request`,
      'add IP ranges to network.cidrs in the policy',
    );
  }
  const source = grantSource(p.name, port, scope);
  return { rules: { ...rules, allow: [...rules.allow, { ...p, source }] }, source };
}

/** `rules` without the grant named `source`. */
export function withoutGrant(rules: NetRules, source: string): NetRules {
  return { ...rules, allow: rules.allow.filter((p) => p.source !== source) };
}
