// The `linux.seccomp` object of the OCI runtime spec (config.json), as runc 1.1 reads it.

export type OciSeccompAction =
  | 'SCMP_ACT_KILL'
  | 'SCMP_ACT_KILL_PROCESS'
  | 'SCMP_ACT_KILL_THREAD'
  | 'SCMP_ACT_TRAP'
  | 'SCMP_ACT_ERRNO'
  | 'SCMP_ACT_TRACE'
  | 'SCMP_ACT_ALLOW'
  | 'SCMP_ACT_LOG'
  | 'SCMP_ACT_NOTIFY';

type OciSeccompArch = 'SCMP_ARCH_X86_64' | 'SCMP_ARCH_X86' | 'SCMP_ARCH_X32' | 'SCMP_ARCH_AARCH64';

type OciSeccompOperator =
  | 'SCMP_CMP_NE'
  | 'SCMP_CMP_LT'
  | 'SCMP_CMP_LE'
  | 'SCMP_CMP_EQ'
  | 'SCMP_CMP_GE'
  | 'SCMP_CMP_GT'
  | 'SCMP_CMP_MASKED_EQ';

type OciSeccompFlag =
  'SECCOMP_FILTER_FLAG_TSYNC' | 'SECCOMP_FILTER_FLAG_LOG' | 'SECCOMP_FILTER_FLAG_SPEC_ALLOW';

/**
 * One argument comparison. For SCMP_CMP_MASKED_EQ, `value` is the mask and `valueTwo` the
 * expected value of (arg & mask). Values stay below 2^53 so JSON numbers carry them exactly.
 */
export interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: OciSeccompOperator;
}

export interface OciSeccompSyscall {
  names: string[];
  action: OciSeccompAction;
  errnoRet?: number;
  /**
   * Comparisons on different indexes must all hold; runc turns comparisons that share an index
   * into separate rules, so those are alternatives.
   */
  args?: OciSeccompArg[];
}

export interface OciSeccomp {
  defaultAction: OciSeccompAction;
  defaultErrnoRet?: number;
  architectures?: OciSeccompArch[];
  flags?: OciSeccompFlag[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: OciSeccompSyscall[];
}
