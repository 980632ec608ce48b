// Public surface of the seccomp module: typed syscall tables -> OCI seccomp profile -> BPF (pure).
export { compileSeccompBpf } from './bpf.js';
export {
  buildSeccompProfile,
  hostSeccompArch,
  type SeccompArch,
  type SeccompOptions,
  type SeccompPlan,
} from './profile.js';
export { validateSyscallNames } from './syscalls.js';
