// The calls the monitor's exec guard (native/execguard.c) answers besides execve/execveat:
// mmap(PROT_EXEC) of a file, so a library or program mapped by the loader or dlopen passes the
// same allowlist as an exec (and a refusal is recorded), and memfd_create, so every memfd is
// made sealed non-executable. Anonymous and non-executable mappings never leave the kernel.
import type { OciSeccompArg, OciSeccompSyscall } from './oci.js';

const PROT_EXEC = 0x4;
const MAP_ANONYMOUS = 0x20;

/** The names whose plain allow rule these rules replace while the monitor is on. */
export const EXEC_GUARDED: readonly string[] = ['mmap', 'memfd_create'];

const bit = (index: number, mask: number, set: boolean): OciSeccompArg => ({
  index,
  op: 'SCMP_CMP_MASKED_EQ',
  value: mask,
  valueTwo: set ? mask : 0,
});

/** Disjoint rules (see args.ts: overlapping rules with different actions have no order). */
export function execGuardRules(names: readonly string[]): OciSeccompSyscall[] {
  const rules: OciSeccompSyscall[] = [];
  if (names.includes('mmap')) {
    rules.push(
      { names: ['mmap'], action: 'SCMP_ACT_ALLOW', args: [bit(2, PROT_EXEC, false)] },
      {
        names: ['mmap'],
        action: 'SCMP_ACT_ALLOW',
        args: [bit(2, PROT_EXEC, true), bit(3, MAP_ANONYMOUS, true)],
      },
      {
        names: ['mmap'],
        action: 'SCMP_ACT_NOTIFY',
        args: [bit(2, PROT_EXEC, true), bit(3, MAP_ANONYMOUS, false)],
      },
    );
  }
  if (names.includes('memfd_create')) {
    rules.push({ names: ['memfd_create'], action: 'SCMP_ACT_NOTIFY' });
  }
  return rules;
}
