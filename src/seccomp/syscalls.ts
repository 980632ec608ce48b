// Typed view over the generated number tables (names and numbers per ABI).
import { NanocellError, PolicyError } from '../util/errors.js';
import { SYSCALL_NUMBERS } from './syscall-numbers.generated.js';

/** Architectures nanocell builds a profile for. */
export type SeccompArch = 'x86_64' | 'aarch64';
/** Every ABI in the tables; i386 and x32 are the foreign ABIs an x86_64 cell must refuse. */
export type SyscallAbi = keyof typeof SYSCALL_NUMBERS;

function numbersOf(abi: SyscallAbi): Readonly<Record<string, number>> {
  return SYSCALL_NUMBERS[abi];
}

/** The syscall names of one ABI, in number order. */
export function syscallNames(abi: SyscallAbi): string[] {
  return Object.entries(numbersOf(abi))
    .sort((a, b) => a[1] - b[1])
    .map(([name]) => name);
}

/** The number of `name` on `abi`, or undefined if that ABI has no such syscall. */
export function syscallNumber(abi: SyscallAbi, name: string): number | undefined {
  return Object.hasOwn(numbersOf(abi), name) ? numbersOf(abi)[name] : undefined;
}

/** True if `name` is a syscall of a profile architecture (x86_64 or aarch64). */
function isKnownSyscall(name: string): boolean {
  return (
    syscallNumber('x86_64', name) !== undefined || syscallNumber('aarch64', name) !== undefined
  );
}

/**
 * Throws a PolicyError naming the first entry of `names` that is not a known syscall. Here, with
 * the tables alone, because policy validation needs it and the profile compiler is larger.
 */
export function validateSyscallNames(names: string[], field: string): void {
  names.forEach((name, i) => {
    if (typeof name !== 'string' || !isKnownSyscall(name)) {
      throw new PolicyError(
        `${field}[${i}]: unknown syscall ${JSON.stringify(name)}`,
        `use a Linux syscall name as in the x86_64 or aarch64 syscall table (for example "${suggest(name)}")`,
      );
    }
  });
}

function suggest(name: unknown): string {
  const n = String(name).toLowerCase().replace(/^sys_/, '').trim();
  return isKnownSyscall(n) ? n : 'openat';
}

/** The architecture of this host, as a profile architecture. */
export function hostSeccompArch(): SeccompArch {
  switch (process.arch) {
    case 'x64':
      return 'x86_64';
    case 'arm64':
      return 'aarch64';
    default:
      throw new NanocellError(
        `nanocell has no seccomp profile for the ${process.arch} architecture`,
        'run nanocell on an x86_64 or aarch64 host',
        'HOST',
      );
  }
}
