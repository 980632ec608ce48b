// The credential broker of one cell. The supervisor reads each secret's real value (never the
// cell), gives the cell a placeholder of the same length and shape, and the proxy asks
// `rewrite` about every request it can read (intercepted TLS to a bound host, plain HTTP):
// placeholders bound to this host, path and header become the real value; a placeholder
// anywhere else refuses the request. Both outcomes are recorded.
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecretEntry } from '../policy/secrets.js';
import { decideHost, type NetRules } from './rules.js';
import { NanocellError } from '../util/errors.js';

export interface BrokeredSecret extends SecretEntry {
  value: string;
  placeholder: string;
}

/** The broker's records (src/audit/cellEvents.ts names them); values never appear in them. */
export type SecretEvent =
  | {
      type: 'secret.used';
      name: string;
      host: string;
      method: string;
      path: string;
      status: number;
    }
  | { type: 'secret.misuse'; name: string; host: string; path: string; reason: string };

const ALNUM = /[A-Za-z0-9]/;
const DIGITS = '0123456789';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();

/**
 * Same length, same character classes, the prefix kept (up to the last `-` or `_` within the
 * first 16 characters, as in `sk-ant-api03-`), so clients that check the format accept it.
 * Random, so it cannot be guessed from outside and differs from the value.
 */
export function makePlaceholder(value: string): string {
  const head = value.slice(0, 16);
  const cut = Math.max(head.lastIndexOf('-'), head.lastIndexOf('_')) + 1;
  // Too short a random part could collide with text a program prints for other reasons.
  const keep = value.length - cut >= 12 ? cut : 0;
  for (;;) {
    let out = value.slice(0, keep);
    for (const ch of value.slice(keep)) {
      if (!ALNUM.test(ch)) out += ch;
      else {
        const set = /[0-9]/.test(ch) ? DIGITS : /[a-z]/.test(ch) ? LOWER : UPPER;
        out += set[randomInt(set.length)];
      }
    }
    if (out !== value) return out;
  }
}

/** Every host a secret is bound to must be allowed: on 443, or on a port an allow entry names. */
export function checkSecretHosts(entries: readonly SecretEntry[], rules: NetRules): void {
  const ports = [443, ...rules.allow.flatMap((a) => (a.ports === 'any' ? [] : a.ports))];
  for (const e of entries) {
    for (const b of e.bindings) {
      if (ports.every((p) => decideHost(rules, b.host, p).decision === 'denied')) {
        throw new NanocellError(
          `secret ${e.name} is bound to ${b.host}, which network.allow does not allow`,
          `add ${b.host} to network.allow (or --allow-net ${b.host})`,
          'POLICY',
        );
      }
    }
  }
}

/** Reads every value; one that cannot be read stops the cell (fail closed). */
export function readSecrets(
  entries: readonly SecretEntry[],
  hostEnv: NodeJS.ProcessEnv,
): BrokeredSecret[] {
  return entries.map((e) => {
    const value = readValue(e, hostEnv);
    if (value.length < 8 || /[\0\r\n]/.test(value)) {
      throw new NanocellError(
        `secret ${e.name}: its value is ${value.length < 8 ? 'shorter than 8 characters' : 'not one line'}`,
        `check ${describeSource(e)}`,
        'POLICY',
      );
    }
    return { ...e, value, placeholder: makePlaceholder(value) };
  });
}

function describeSource(e: SecretEntry): string {
  if ('env' in e.from) return `the host variable ${e.from.env}`;
  if ('file' in e.from) return `the file ${e.from.file}`;
  return `the command ${JSON.stringify(e.from.command.join(' '))}`;
}

function readValue(e: SecretEntry, hostEnv: NodeJS.ProcessEnv): string {
  const fail = (why: string) =>
    new NanocellError(
      `secret ${e.name}: ${why}`,
      `set ${describeSource(e)} for nanocell, or remove the secret from the policy`,
      'POLICY',
    );
  if ('env' in e.from) {
    const v = hostEnv[e.from.env];
    if (v === undefined || v === '') throw fail(`the host variable ${e.from.env} is not set`);
    return v;
  }
  try {
    if ('file' in e.from) return readFileSync(e.from.file, 'utf8').replace(/\r?\n$/, '');
    const [cmd, ...args] = e.from.command;
    return execFileSync(cmd!, args, {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).replace(/\r?\n$/, '');
  } catch (err) {
    throw fail(`cannot read ${describeSource(e)}: ${(err as Error).message.split('\n')[0]}`);
  }
}

export interface OutboundRequest {
  host: string;
  method: string;
  /** The request target (path and query). */
  target: string;
  /** Node's rawHeaders: name, value, name, value... */
  rawHeaders: string[];
  /** Verified TLS to the upstream (intercepted), or plain http://. */
  tls: boolean;
}

export type RewriteResult =
  { ok: true; rawHeaders: string[]; used: string[] } | { ok: false; name: string; reason: string };

export class SecretBroker {
  constructor(
    private current: readonly BrokeredSecret[],
    private readonly onEvent: (e: SecretEvent) => void,
  ) {}

  get secrets(): readonly BrokeredSecret[] {
    return this.current;
  }

  /**
   * A warm cell's claim brings its own secrets (src/cell/claim.ts): from now on only these are
   * put in, and the earlier ones' placeholders are strings like any other.
   */
  replace(secrets: readonly BrokeredSecret[]): void {
    this.current = secrets;
  }

  /** The variables the cell sees: placeholders only. */
  env(): Record<string, string> {
    return Object.fromEntries(this.secrets.map((s) => [s.name, s.placeholder]));
  }

  /** Whether CONNECTs to this host are intercepted (some secret is bound to it). */
  binds(host: string): boolean {
    const h = host.toLowerCase();
    return this.secrets.some((s) => s.bindings.some((b) => b.host === h));
  }

  /** Every host some secret is bound to. */
  hosts(): string[] {
    return [...new Set(this.secrets.flatMap((s) => s.bindings.map((b) => b.host)))];
  }

  rewrite(req: OutboundRequest): RewriteResult {
    const path = req.target.split('?')[0] ?? '';
    const refuse = (s: BrokeredSecret, reason: string): RewriteResult => {
      this.onEvent({ type: 'secret.misuse', name: s.name, host: req.host, path, reason });
      return { ok: false, name: s.name, reason };
    };
    for (const s of this.secrets) {
      if (req.target.includes(s.placeholder)) return refuse(s, 'placeholder in the request URL');
    }
    const out = [...req.rawHeaders];
    const used = new Set<string>();
    for (let i = 1; i < out.length; i += 2) {
      for (const s of this.secrets) {
        const v = out[i]!;
        if (!v.includes(s.placeholder)) continue;
        const why = this.whyNot(s, req, path, out[i - 1]!.toLowerCase(), v);
        if (why) return refuse(s, why);
        out[i] = v.split(s.placeholder).join(s.value);
        used.add(s.name);
      }
    }
    return { ok: true, rawHeaders: out, used: [...used] };
  }

  /** Records the uses of a rewritten request once its status is known. */
  recordUse(
    names: readonly string[],
    host: string,
    method: string,
    target: string,
    status: number,
  ) {
    const path = target.split('?')[0] ?? '';
    for (const name of names)
      this.onEvent({ type: 'secret.used', name, host, method, path, status });
  }

  private whyNot(
    s: BrokeredSecret,
    req: OutboundRequest,
    path: string,
    header: string,
    value: string,
  ): string | undefined {
    const host = req.host.toLowerCase();
    const bound = s.bindings.filter((b) => b.host === host);
    if (bound.length === 0) return `${s.name} is not bound to ${host}`;
    if (!bound.some((b) => path.startsWith(b.pathPrefix))) {
      return `${s.name} is bound to ${bound.map((b) => host + b.pathPrefix).join(', ')}, not ${path}`;
    }
    if (!req.tls && !s.allowPlainHttp) return `${s.name} is sent over verified TLS only`;
    if (s.header && s.header.name !== header)
      return `${s.name} goes in the ${s.header.name} header only`;
    if (s.header?.scheme && value !== `${s.header.scheme} ${s.placeholder}`) {
      return `${s.name} goes as "${s.header.scheme} <value>" only`;
    }
    return undefined;
  }
}
