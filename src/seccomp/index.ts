// Public surface of the seccomp module: typed syscall tables -> OCI seccomp profile (pure).
export {
  buildSeccompProfile,
  hostSeccompArch,
  validateSyscallNames,
  type SeccompArch,
  type SeccompOptions,
  type SeccompPlan,
} from './profile.js';
