import type { AuditStore } from '../audit/store.js';

export interface CliContext {
  stateRoot(): string;
  openStore(): AuditStore;
}
