// What a profile answers to one call, modelled on how runc loads it into libseccomp. Used by
// tests and by explanations ("why was this call denied?"); the kernel is the real judge.
import { argsMatch } from './args.js';
import type { OciSeccomp, OciSeccompAction } from './oci.js';

export interface CallOutcome {
  action: OciSeccompAction;
  errnoRet?: number;
}

/**
 * The outcome of `name(args)` under `profile`. Throws if two matching rules disagree, because
 * libseccomp gives no order between them and the result would depend on its internals.
 */
export function decideCall(
  profile: OciSeccomp,
  name: string,
  args: readonly bigint[] = [],
): CallOutcome {
  const outcomes = new Map<string, CallOutcome>();
  for (const rule of profile.syscalls ?? []) {
    if (!rule.names.includes(name) || !argsMatch(rule.args, args)) continue;
    const outcome: CallOutcome =
      rule.errnoRet === undefined
        ? { action: rule.action }
        : { action: rule.action, errnoRet: rule.errnoRet };
    outcomes.set(`${outcome.action}/${outcome.errnoRet ?? ''}`, outcome);
  }
  if (outcomes.size > 1) {
    throw new Error(
      `rules for ${name}(${args.join(', ')}) disagree: ${[...outcomes.keys()].join(' vs ')}`,
    );
  }
  const [only] = outcomes.values();
  if (only) return only;
  return profile.defaultErrnoRet === undefined
    ? { action: profile.defaultAction }
    : { action: profile.defaultAction, errnoRet: profile.defaultErrnoRet };
}
