// Typed view over the generated number tables and the hand-written categories.
import { NanocellError } from '../util/errors.js';
import { SYSCALL_CATEGORY_LISTS, type SyscallCategory } from './categories.js';
import { SYSCALL_NUMBERS } from './syscall-numbers.generated.js';

/** Architectures nanocell builds a profile for. */
export type SeccompArch = 'x86_64' | 'aarch64';
/** Every ABI in the tables; i386 and x32 are the foreign ABIs an x86_64 cell must refuse. */
export type SyscallAbi = keyof typeof SYSCALL_NUMBERS;

export interface SyscallInfo {
  name: string;
  category: SyscallCategory;
  /** Number per ABI; absent where the ABI has no such syscall. */
  numbers: Partial<Record<SyscallAbi, number>>;
}

const CATEGORY_OF: ReadonlyMap<string, SyscallCategory> = new Map(
  (Object.entries(SYSCALL_CATEGORY_LISTS) as [SyscallCategory, readonly string[]][]).flatMap(
    ([category, names]) => names.map((n) => [n, category] as const),
  ),
);

const ABIS = Object.keys(SYSCALL_NUMBERS) as SyscallAbi[];

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
export function isKnownSyscall(name: string): boolean {
  return (
    syscallNumber('x86_64', name) !== undefined || syscallNumber('aarch64', name) !== undefined
  );
}

/** The category of a syscall, or undefined for a name no table lists. */
export function syscallCategory(name: string): SyscallCategory | undefined {
  return CATEGORY_OF.get(name);
}

/** Every name in every ABI table, with its category and numbers. */
export function allSyscalls(): SyscallInfo[] {
  const names = new Set(ABIS.flatMap((abi) => Object.keys(numbersOf(abi))));
  return [...names].sort().map((name) => {
    const numbers: Partial<Record<SyscallAbi, number>> = {};
    for (const abi of ABIS) {
      const nr = syscallNumber(abi, name);
      if (nr !== undefined) numbers[abi] = nr;
    }
    const category = CATEGORY_OF.get(name);
    if (category === undefined) throw new Error(`syscall ${name} has no category`);
    return { name, category, numbers };
  });
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
