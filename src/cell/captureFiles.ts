// What the monitor needs to set up transparent capture: the ruleset, written into the cell's
// dir for the host's nft (found by the resolve step) to load inside the cell's network
// namespace.
import fs from 'node:fs';
import path from 'node:path';
import { captureRuleset } from '../net/capture.js';

export function writeCaptureRules(cellDir: string, nft: string): { rules: string; nft: string } {
  const rules = path.join(cellDir, 'capture.nft');
  fs.writeFileSync(rules, captureRuleset(), { mode: 0o644 });
  return { rules, nft };
}

/**
 * Where there is no seccomp listener (runsc, or seccomp off for a benchmark) the proxy is
 * reached through init's bridge and nothing captures other traffic: under gVisor the task
 * talks to gVisor's own netstack, where the host's nftables rules do not apply. The proxy
 * still decides every connection that reaches it, and nothing else leaves (the namespace has
 * only loopback), but clients that ignore the proxy variables fail instead of being captured.
 */
export function noCaptureNotice(runtime: string): {
  type: 'policy.degraded';
  control: string;
  reason: string;
} {
  return {
    type: 'policy.degraded',
    control: 'egress-capture',
    reason: `no transparent capture under ${runtime} (no seccomp listener to set it up; gVisor has its own netstack): only clients that use the proxy variables reach allowed hosts, and there is no DNS stub`,
  };
}
