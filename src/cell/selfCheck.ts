// The cell's start check of its own egress controls: the compiled rules allow what the policy
// allows and refuse what it does not, and the proxy answers a refused request through the very
// listener the cell's programs reach. A broken control fails the start within a second (of the
// supervisor's own running time) with a line naming it, instead of a task that hangs on its
// first connection.
//
// Cheap by design: the rule check is two lookups, and the proxy check is one CONNECT on a
// connection the monitor made from inside the cell while it set the listener up (or, with the
// unix-socket proxy, one the supervisor makes), answered by the proxy in the same process. It
// runs while init is starting, so it adds no round trip of its own to the cell's start.
import type net from 'node:net';
import { decideHost, type NetRules } from '../net/rules.js';
import { NanocellError } from '../util/errors.js';

/** A name no DNS has (RFC 6761 `.invalid`): the check's refused destination. */
export const START_CHECK_HOST = 'nanocell-start-check.invalid';
const START_CHECK_TIMEOUT_MS = 1000;
/**
 * The bound counts the supervisor's own time: the proxy answering is this process's event
 * loop, so a stretch when the loop could not run (a large change set hashed synchronously by
 * another cell, a starved host) counts as at most one tick, not as the proxy failing.
 */
const TICK_MS = 100;
const MAX_TICK_CREDIT_MS = 150;
const MAX_ANSWER = 4096;

function failed(why: string): NanocellError {
  return new NanocellError(
    `the cell's egress controls failed their start check: ${why}`,
    'run `nanocell doctor`; if it finds nothing, report a bug with this line',
    'RUNTIME',
  );
}

/**
 * Throws when the rules do not decide two sample destinations as the policy says: a name the
 * first usable allow entry names (unless a deny entry refuses it too), and a name none allows.
 */
export function checkRules(rules: NetRules): boolean {
  for (const p of rules.allow) {
    if (p.kind === 'address') continue;
    const host = p.kind === 'exact' ? p.name : `start-check.${p.suffix}`;
    const port = p.ports === 'any' ? 443 : (p.ports[0] ?? 443);
    const d = decideHost(rules, host, port);
    if (d.rule.startsWith('deny:')) continue;
    if (d.decision !== 'allowed')
      throw failed(`${host}:${port} is allowed by network.allow but was refused (${d.rule})`);
    break;
  }
  // A policy may allow even this name (`*.invalid`): then the proxy's answer is a dial error.
  const d = decideHost(rules, START_CHECK_HOST, 443);
  if (d.decision === 'denied' && d.rule !== 'default-deny' && !d.rule.startsWith('deny:'))
    throw failed(`${START_CHECK_HOST} was refused by ${d.rule}, not by network.allow`);
  return d.decision === 'denied';
}

/**
 * Sends one CONNECT to the refused name on `probe` (a connection to the proxy's listener) and
 * resolves once a 403 with nanocell's reason header comes back; rejects on anything else, on
 * the connection failing, or after START_CHECK_TIMEOUT_MS.
 */
export function checkProxyAnswers(
  probe: net.Socket,
  where: string,
  refused: boolean,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let answer = '';
    const done = (err?: NanocellError) => {
      clearInterval(timer);
      probe.removeAllListeners('data');
      probe.destroy();
      if (err) reject(err);
      else resolve();
    };
    let waited = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      waited += Math.min(now - last, MAX_TICK_CREDIT_MS);
      last = now;
      if (waited >= START_CHECK_TIMEOUT_MS - 1)
        done(failed(`the proxy on ${where} did not answer within ${START_CHECK_TIMEOUT_MS} ms`));
    }, TICK_MS);
    probe.setEncoding('latin1');
    probe.on('data', (d: string) => {
      answer += d;
      if (!answer.includes('\r\n\r\n') && answer.length < MAX_ANSWER) return;
      const status = answer.slice(0, answer.indexOf('\r\n'));
      const denied =
        /^HTTP\/1\.1 403 /.test(status) && /\r\nX-Nanocell-Deny-Reason: /i.test(answer);
      if (denied || (!refused && /^HTTP\/1\.1 5\d\d /.test(status))) return done();
      done(
        failed(
          `the proxy on ${where} answered a refused destination with "${status.slice(0, 80)}"`,
        ),
      );
    });
    probe.once('error', (e: Error) => done(failed(`the proxy on ${where}: ${e.message}`)));
    probe.once('close', () =>
      done(failed(`the proxy on ${where} closed the connection without an answer`)),
    );
    probe.write(
      `CONNECT ${START_CHECK_HOST}:443 HTTP/1.1\r\nHost: ${START_CHECK_HOST}:443\r\n\r\n`,
    );
  });
}
