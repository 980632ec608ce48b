// Every error the user can cause carries a one-line reason and the fix.
// The CLI prints `nanocell: <message> (fix: <fix>)` and exits 125.

export type ErrorKind =
  'POLICY' | 'USAGE' | 'WORKSPACE' | 'RUNTIME' | 'HOST' | 'STATE' | 'INTERNAL';

export class NanocellError extends Error {
  constructor(
    message: string,
    readonly fix: string,
    readonly kind: ErrorKind = 'INTERNAL',
  ) {
    super(message);
    this.name = 'NanocellError';
  }

  /** The single line shown to the user. */
  oneLine(): string {
    return `${this.message}${this.fix ? ` (fix: ${this.fix})` : ''}`.replace(/\s*\n\s*/g, ' ');
  }
}

/**
 * A policy the user wrote cannot be honoured. It lives here, below policy/ and seccomp/, so
 * that every layer that validates a policy field can throw it without importing the loader.
 */
export class PolicyError extends NanocellError {
  constructor(message: string, fix = 'correct the policy; see schema/policy.schema.json') {
    super(message, fix, 'POLICY');
  }
}
