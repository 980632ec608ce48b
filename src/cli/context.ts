// What every verb module gets from the program: the state root the global --state-root option
// names, and the audit store there. Passed in rather than imported, so that a verb's module
// loads without the program (each verb is its own chunk; see main.ts).
import type { AuditStore } from '../audit/store.js';

export interface CliContext {
  stateRoot(): string;
  openStore(): AuditStore;
}
