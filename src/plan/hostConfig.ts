// Host package-manager configuration (policy `hostConfig:`): the user's registry URLs, scopes,
// CA bundles and settings carried into the cell, with every credential stripped. Credentials
// never cross: a registry token in .npmrc or a password in a pip index URL is removed here and
// named (never shown) in the report; secrets a task needs go through the proxy instead. Pure:
// the host's file texts are inputs (read by src/host/hostConfigFiles.ts).
import path from 'node:path';
import type { HostConfigTool } from '../policy/schema.js';
import { PolicyError } from '../util/errors.js';
import { CELL_HOME } from './layout.js';

/** Where the carried files appear: one read-only dir, pointed at by each tool's variable. */
export const HOST_CONFIG_CELL_DIR = path.posix.join(CELL_HOME, '.config', 'nanocell-host');

/** A file as carried into the cell, and what was left out of it. */
export interface CarriedConfig {
  tool: HostConfigTool;
  /** Host file it came from. */
  from: string;
  /** Name inside HOST_CONFIG_CELL_DIR. */
  name: string;
  text: string;
  /** Keys or lines removed, by name only (never their values). */
  stripped: string[];
  /** A CA file the config names, copied next to it (host path, cell name). */
  ca?: { from: string; name: string };
}

/** .npmrc keys that carry credentials, bare or scoped (`//registry.example/:_authToken`). */
const NPM_SECRET_KEY =
  /(^|:)(_authToken|_auth|_password|password|username|email|certfile|keyfile|key|cert)$/i;
/** `scheme://user:pass@` or `scheme://token@`: the userinfo goes. */
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi;
/** Proxy settings would bypass or break the cell's own egress proxy: never carried. */
const PROXY_KEY = /^(proxy|https-proxy|http-proxy|noproxy|no-proxy)$/i;
/** pip.conf options that carry credentials or client keys. */
const PIP_SECRET_KEY = /^(client-cert|cert-password|password|username|keyring-provider)$/i;

/** One `key = value` line of an ini-like file, or undefined for comments and sections. */
function keyOf(line: string): string | undefined {
  const t = line.trim();
  if (!t || t.startsWith('#') || t.startsWith(';') || t.startsWith('[')) return undefined;
  const eq = t.indexOf('=');
  return eq > 0 ? t.slice(0, eq).trim() : undefined;
}

function valueOf(line: string): string {
  return line.slice(line.indexOf('=') + 1).trim();
}

/** .npmrc: tokens and client keys out, userinfo out of URLs, `cafile` copied in. */
export function sanitizeNpmrc(text: string, from: string): CarriedConfig {
  const stripped: string[] = [];
  let ca: CarriedConfig['ca'];
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const key = keyOf(line);
    if (key && (NPM_SECRET_KEY.test(key) || PROXY_KEY.test(key))) {
      stripped.push(key);
      continue;
    }
    if (key === 'cafile') {
      ca = { from: valueOf(line), name: 'npm-ca.pem' };
      out.push(`cafile=${path.posix.join(HOST_CONFIG_CELL_DIR, ca.name)}`);
      continue;
    }
    // Environment references (${NPM_TOKEN}) would be expanded in the cell's env: drop them too.
    if (key && /\$\{[^}]+\}/.test(valueOf(line))) {
      stripped.push(key);
      continue;
    }
    out.push(stripUserinfo(line, key, stripped));
  }
  return {
    tool: 'npm',
    from,
    name: 'npmrc',
    text: out.join('\n'),
    stripped,
    ...(ca ? { ca } : {}),
  };
}

/** pip.conf: index URLs lose their userinfo, credential options go, `cert` is copied in. */
export function sanitizePipConf(text: string, from: string): CarriedConfig {
  const stripped: string[] = [];
  let ca: CarriedConfig['ca'];
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const key = keyOf(line);
    if (key && (PIP_SECRET_KEY.test(key) || PROXY_KEY.test(key))) {
      stripped.push(key);
      continue;
    }
    if (key === 'cert') {
      ca = { from: valueOf(line), name: 'pip-ca.pem' };
      out.push(`cert = ${path.posix.join(HOST_CONFIG_CELL_DIR, ca.name)}`);
      continue;
    }
    out.push(stripUserinfo(line, key, stripped));
  }
  return {
    tool: 'pip',
    from,
    name: 'pip.conf',
    text: out.join('\n'),
    stripped,
    ...(ca ? { ca } : {}),
  };
}

function stripUserinfo(line: string, key: string | undefined, stripped: string[]): string {
  const clean = line.replace(USERINFO, '$1');
  if (clean !== line) stripped.push(`${key ?? 'line'} (credentials in URL)`);
  return clean;
}

/** Each tool's variable that points it at the carried file. */
function hostConfigEnv(carried: readonly CarriedConfig[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const c of carried) {
    const p = path.posix.join(HOST_CONFIG_CELL_DIR, c.name);
    if (c.tool === 'npm') env.NPM_CONFIG_USERCONFIG = p;
    if (c.tool === 'pip') env.PIP_CONFIG_FILE = p;
  }
  return env;
}

export interface HostConfigPlan {
  /** Files to write into the carried dir: name and text (configs and their CA bundles). */
  files: { name: string; text: string }[];
  carried: CarriedConfig[];
  env: Record<string, string>;
}

const SANITIZERS: Record<HostConfigTool, (text: string, from: string) => CarriedConfig> = {
  npm: sanitizeNpmrc,
  pip: sanitizePipConf,
};

/**
 * What `hostConfig:` carries, given the host's files (`find`) and a reader for the CA files
 * they name. A CA file with a private key in it is refused: a bundle holds certificates only.
 */
export function planHostConfig(
  tools: readonly HostConfigTool[],
  find: (tool: HostConfigTool) => { from: string; text: string } | undefined,
  readCa: (p: string) => string | undefined,
): HostConfigPlan {
  const files: HostConfigPlan['files'] = [];
  const carried: CarriedConfig[] = [];
  for (const tool of tools) {
    const f = find(tool);
    if (!f) continue;
    const c = SANITIZERS[tool](f.text, f.from);
    if (c.ca) {
      const pem = readCa(c.ca.from);
      if (pem === undefined || /PRIVATE KEY/.test(pem)) {
        throw new PolicyError(
          `${tool} configuration ${f.from} names the CA file ${c.ca.from}, which ${pem === undefined ? 'does not exist' : 'holds a private key'}`,
          `point it at a CA bundle of certificates only, or drop ${tool} from hostConfig:`,
        );
      }
      files.push({ name: c.ca.name, text: pem });
    }
    files.push({ name: c.name, text: c.text });
    carried.push(c);
  }
  return { files, carried, env: hostConfigEnv(carried) };
}
