// The cell's seccomp profile compiled to a classic BPF program that nanocell-init installs on
// itself (SECCOMP_FILTER_FLAG_NEW_LISTENER), instead of handing the profile to the runtime.
// Why not the runtime: runc resolves names with its own libseccomp, and libseccomp 2.5.4 (Debian
// 12) knows no syscall after Linux 5.17, so runc drops those rules and answers them ENOSYS
// without a notification: refused, but unrecorded, and the allowed ones among them (fchmodat2,
// cachestat, futex_wake…) fail too. Numbers come from nanocell's own tables, so every syscall
// they know gets its rule. Semantics follow decideCall (evaluate.ts): the first matching rule of
// a syscall decides, comparisons are on 64-bit values, and comparisons that share an argument
// index are alternatives (as runc loads them). Pure: the plan holds the bytes.
import type { OciSeccomp, OciSeccompAction, OciSeccompArg, OciSeccompSyscall } from './oci.js';
import { syscallNumber, type SeccompArch } from './syscalls.js';

/** linux/audit.h */
const AUDIT_ARCH: Record<SeccompArch, number> = { x86_64: 0xc000003e, aarch64: 0xc00000b7 };
/** x32 syscalls come in on the x86_64 arch with this bit set in the number. */
const X32_SYSCALL_BIT = 0x40000000;
const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;
const EPERM = 1;

// struct seccomp_data: nr, arch, instruction_pointer, args[6] (each 64-bit, little-endian here).
const NR_OFF = 0;
const ARCH_OFF = 4;
const argOff = (index: number, half: 'lo' | 'hi') => 16 + 8 * index + (half === 'hi' ? 4 : 0);

// Classic BPF opcodes (linux/filter.h).
const OP = { ld: 0x20, and: 0x54, ja: 0x05, jeq: 0x15, jgt: 0x25, jge: 0x35, ret: 0x06 } as const;

/** A jump target: a label, or the next instruction. */
type Target = string;
const NEXT = '';
type Insn =
  | { op: 'ld'; k: number }
  | { op: 'and'; k: number }
  | { op: 'jeq' | 'jgt' | 'jge'; k: number; t: Target; f: Target }
  | { op: 'ja'; to: Target }
  | { op: 'ret'; k: number }
  | { op: 'label'; name: Target };

/** One action as the kernel's return value; ERRNO without errnoRet is EPERM, as runc has it. */
export function actionValue(action: OciSeccompAction, errno?: number): number {
  switch (action) {
    case 'SCMP_ACT_ALLOW':
      return RET.ALLOW;
    case 'SCMP_ACT_NOTIFY':
      return RET.USER_NOTIF;
    case 'SCMP_ACT_LOG':
      return RET.LOG;
    case 'SCMP_ACT_ERRNO':
      return RET.ERRNO | ((errno ?? EPERM) & 0xffff);
    case 'SCMP_ACT_TRACE':
      return RET.TRACE | ((errno ?? EPERM) & 0xffff);
    case 'SCMP_ACT_TRAP':
      return RET.TRAP;
    case 'SCMP_ACT_KILL_PROCESS':
      return RET.KILL_PROCESS;
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return RET.KILL_THREAD;
  }
}

class Asm {
  readonly code: Insn[] = [];
  private n = 0;
  label(): Target {
    return `L${this.n++}`;
  }
  put(...insns: Insn[]): void {
    this.code.push(...insns);
  }
  place(name: Target): void {
    this.code.push({ op: 'label', name });
  }
}

const hi = (v: number) => Math.floor(v / 2 ** 32);
const lo = (v: number) => v % 2 ** 32;

/** One comparison: falls through when it holds, jumps to `fail` when it does not. */
function emitComparison(a: Asm, c: OciSeccompArg, fail: Target): void {
  const v = c.value;
  const [ldHi, ldLo] = [argOff(c.index, 'hi'), argOff(c.index, 'lo')];
  const pass = a.label();
  switch (c.op) {
    case 'SCMP_CMP_EQ':
      a.put({ op: 'ld', k: ldHi }, { op: 'jeq', k: hi(v), t: NEXT, f: fail });
      a.put({ op: 'ld', k: ldLo }, { op: 'jeq', k: lo(v), t: NEXT, f: fail });
      break;
    case 'SCMP_CMP_NE':
      a.put({ op: 'ld', k: ldHi }, { op: 'jeq', k: hi(v), t: NEXT, f: pass });
      a.put({ op: 'ld', k: ldLo }, { op: 'jeq', k: lo(v), t: fail, f: NEXT });
      break;
    case 'SCMP_CMP_MASKED_EQ': {
      const want = c.valueTwo ?? 0;
      a.put({ op: 'ld', k: ldHi }, { op: 'and', k: hi(v) });
      a.put({ op: 'jeq', k: hi(want), t: NEXT, f: fail });
      a.put({ op: 'ld', k: ldLo }, { op: 'and', k: lo(v) });
      a.put({ op: 'jeq', k: lo(want), t: NEXT, f: fail });
      break;
    }
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE':
      // High words decide unless equal; then the low words do.
      a.put({ op: 'ld', k: ldHi }, { op: 'jgt', k: hi(v), t: pass, f: NEXT });
      a.put({ op: 'jeq', k: hi(v), t: NEXT, f: fail }, { op: 'ld', k: ldLo });
      a.put({ op: c.op === 'SCMP_CMP_GT' ? 'jgt' : 'jge', k: lo(v), t: NEXT, f: fail });
      break;
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE':
      a.put({ op: 'ld', k: ldHi }, { op: 'jge', k: hi(v), t: NEXT, f: pass });
      a.put({ op: 'jeq', k: hi(v), t: NEXT, f: fail }, { op: 'ld', k: ldLo });
      a.put({ op: c.op === 'SCMP_CMP_LT' ? 'jge' : 'jgt', k: lo(v), t: fail, f: NEXT });
      break;
  }
  a.place(pass);
}

/** The alternatives of one rule: all comparisons together, or each alone when indexes repeat. */
function alternatives(args: readonly OciSeccompArg[] | undefined): OciSeccompArg[][] {
  if (!args || args.length === 0) return [[]];
  const indexes = args.map((c) => c.index);
  return new Set(indexes).size !== indexes.length ? args.map((c) => [c]) : [[...args]];
}

/** A syscall's rules in profile order; the first that matches returns, else the default. */
function emitRules(a: Asm, rules: readonly OciSeccompSyscall[], fallback: number): void {
  for (const rule of rules) {
    for (const alt of alternatives(rule.args)) {
      const fail = a.label();
      for (const c of alt) emitComparison(a, c, fail);
      a.put({ op: 'ret', k: actionValue(rule.action, rule.errnoRet) });
      a.place(fail);
    }
  }
  a.put({ op: 'ret', k: fallback });
}

/** A binary search over the sorted syscall numbers; long hops go through `ja`. */
function emitTree(a: Asm, nums: readonly number[], block: (nr: number) => Target, none: Target) {
  if (nums.length <= 3) {
    for (const nr of nums) {
      const skip = a.label();
      a.put({ op: 'jeq', k: nr, t: NEXT, f: skip }, { op: 'ja', to: block(nr) });
      a.place(skip);
    }
    a.put({ op: 'ja', to: none });
    return;
  }
  const m = Math.floor(nums.length / 2);
  const [left, right] = [a.label(), a.label()];
  a.put({ op: 'jgt', k: nums[m - 1]!, t: NEXT, f: left }, { op: 'ja', to: right });
  a.place(left);
  emitTree(a, nums.slice(0, m), block, none);
  a.place(right);
  emitTree(a, nums.slice(m), block, none);
}

/** Resolves labels and encodes struct sock_filter entries (u16 code, u8 jt, u8 jf, u32 k). */
function assemble(code: readonly Insn[]): Buffer {
  const at = new Map<Target, number>();
  let pc = 0;
  for (const i of code) {
    if (i.op === 'label') at.set(i.name, pc);
    else pc++;
  }
  const out = Buffer.alloc(pc * 8);
  pc = 0;
  const offset = (from: number, to: Target, max: number) => {
    if (to === NEXT) return 0;
    const d = at.get(to)! - from - 1;
    if (!(d >= 0 && d <= max)) throw new Error(`seccomp BPF: jump to ${to} out of range (${d})`);
    return d;
  };
  for (const i of code) {
    if (i.op === 'label') continue;
    let [jt, jf, k] = [0, 0, 0];
    if (i.op === 'ja') k = offset(pc, i.to, 0xffffffff);
    else if (i.op === 'jeq' || i.op === 'jgt' || i.op === 'jge') {
      [jt, jf, k] = [offset(pc, i.t, 255), offset(pc, i.f, 255), i.k];
    } else k = i.k;
    out.writeUInt16LE(OP[i.op], pc * 8);
    out.writeUInt8(jt, pc * 8 + 2);
    out.writeUInt8(jf, pc * 8 + 3);
    out.writeUInt32LE(k >>> 0, pc * 8 + 4);
    pc++;
  }
  if (pc > 4096) throw new Error(`seccomp BPF: ${pc} instructions (the kernel takes 4096)`);
  return out;
}

/**
 * The filter for `profile` on `arch`. A foreign ABI (another audit arch, or x32 on x86_64)
 * kills the process, as libseccomp's default bad-arch action does: it must never reach the
 * monitor, whose tables are those of the native ABI.
 */
export function compileSeccompBpf(profile: OciSeccomp, arch: SeccompArch): Buffer {
  const byNumber = new Map<number, OciSeccompSyscall[]>();
  for (const rule of profile.syscalls ?? []) {
    for (const name of new Set(rule.names)) {
      const nr = syscallNumber(arch, name);
      if (nr === undefined) continue;
      byNumber.set(nr, [...(byNumber.get(nr) ?? []), rule]);
    }
  }
  const fallback = actionValue(profile.defaultAction, profile.defaultErrnoRet);
  const a = new Asm();
  const [foreign, none, native, notX32] = [a.label(), a.label(), a.label(), a.label()];
  // Conditional jumps reach 255 instructions: the far ones go through `ja`.
  a.put({ op: 'ld', k: ARCH_OFF }, { op: 'jeq', k: AUDIT_ARCH[arch], t: native, f: NEXT });
  a.put({ op: 'ja', to: foreign });
  a.place(native);
  a.put({ op: 'ld', k: NR_OFF });
  if (arch === 'x86_64') {
    a.put({ op: 'jge', k: X32_SYSCALL_BIT, t: NEXT, f: notX32 }, { op: 'ja', to: foreign });
  }
  a.place(notX32);
  const nums = [...byNumber.keys()].sort((x, y) => x - y);
  emitTree(a, nums, (nr) => `sc${nr}`, none);
  for (const nr of nums) {
    a.place(`sc${nr}`);
    emitRules(a, byNumber.get(nr)!, fallback);
  }
  a.place(none);
  a.put({ op: 'ret', k: fallback });
  a.place(foreign);
  a.put({ op: 'ret', k: RET.KILL_PROCESS });
  return assemble(a.code);
}
