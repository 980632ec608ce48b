// Public surface of the seccomp module: typed syscall tables -> OCI seccomp profile -> BPF (pure).
export { compileSeccompBpf } from './bpf.js';
export {
  buildSeccompProfile,
  hostSeccompArch,
  validateSyscallNames,
  type SeccompArch,
  type SeccompOptions,
  type SeccompPlan,
} from './profile.js';
