// Public surface of the seccomp module: typed syscall tables -> OCI seccomp profile (pure).
export {
  buildSeccompProfile,
  decideSyscalls,
  hostSeccompArch,
  isForbidden,
  notifyTableFor,
  validateSyscallNames,
  type Decision,
  type SeccompArch,
  type SeccompOptions,
  type SeccompPlan,
} from './profile.js';
export type { OciSeccomp, OciSeccompArg, OciSeccompSyscall } from './oci.js';
export {
  allSyscalls,
  isKnownSyscall,
  syscallCategory,
  syscallNumber,
  type SyscallInfo,
} from './syscalls.js';
export { decideCall } from './evaluate.js';
