// Argument conditions that split a syscall's argument space into an allowed part and a denied
// part with nothing left over, so that a denied value hits an explicit (recorded) rule instead
// of the filter's silent default.
//
// runc turns several comparisons on the same argument into separate rules (alternatives), and
// libseccomp gives no order between overlapping rules with different actions. So each side is
// built as alternatives that never overlap the other side. Values stay below 2^32 so they are
// exact as JSON numbers.
import type { OciSeccompArg } from './oci.js';

const TWO_32 = 0x1_0000_0000;
const LOW32 = 0xffff_ffff;

/** [base, base + size) with size a power of two and base a multiple of size. */
interface Block {
  base: number;
  size: number;
}

/** The fewest aligned power-of-two blocks that exactly cover the inclusive range [lo, hi]. */
export function alignedBlocks(lo: number, hi: number): Block[] {
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && hi < TWO_32 && lo <= hi)) {
    throw new RangeError(`bad range [${lo}, ${hi}]`);
  }
  const blocks: Block[] = [];
  let at = lo;
  while (at <= hi) {
    let size = 1;
    while (at % (size * 2) === 0 && at + size * 2 - 1 <= hi && size * 2 <= TWO_32) size *= 2;
    blocks.push({ base: at, size });
    at += size;
  }
  return blocks;
}

function sortedUnique(values: readonly number[]): number[] {
  for (const v of values) {
    if (!(Number.isInteger(v) && v >= 0 && v <= LOW32)) throw new RangeError(`bad value ${v}`);
  }
  return [...new Set(values)].sort((a, b) => a - b);
}

/** The gaps of [0, 2^32) not covered by `values`, as inclusive ranges. */
function gaps32(values: readonly number[]): [number, number][] {
  const gaps: [number, number][] = [];
  let next = 0;
  for (const v of sortedUnique(values)) {
    if (v > next) gaps.push([next, v - 1]);
    next = v + 1;
  }
  if (next <= LOW32) gaps.push([next, LOW32]);
  return gaps;
}

function maskedBlock(index: number, b: Block): OciSeccompArg {
  return { index, op: 'SCMP_CMP_MASKED_EQ', value: TWO_32 - b.size, valueTwo: b.base };
}

/** A full 64-bit argument equals one of `values`. */
export function argIn(index: number, values: readonly number[]): OciSeccompArg[] {
  return sortedUnique(values).map((value) => ({ index, op: 'SCMP_CMP_EQ', value }));
}

/**
 * A full 64-bit argument is none of `values` (all below 2^32): the complement of argIn. Below
 * the smallest and above the largest value one LT and one GT rule suffice; the gaps between are
 * masked blocks over the low 32 bits, which also match some values above 2^32: those are
 * denied by the GT rule too, so the overlap has one action.
 */
export function argNotIn(index: number, values: readonly number[]): OciSeccompArg[] {
  const sorted = sortedUnique(values);
  const min = sorted[0];
  const max = sorted[sorted.length - 1];
  if (min === undefined || max === undefined) throw new RangeError('argNotIn needs a value');
  const conds: OciSeccompArg[] = [{ index, op: 'SCMP_CMP_GT', value: max }];
  if (min > 0) conds.push({ index, op: 'SCMP_CMP_LT', value: min });
  for (const [lo, hi] of gaps32(sorted)) {
    if (lo < min || hi > max) continue; // covered by LT / GT
    for (const b of alignedBlocks(lo, hi)) conds.push(maskedBlock(index, b));
  }
  return conds;
}

/** The low 32 bits of an argument (what the kernel reads for an `int` parameter) are one of `values`. */
export function low32In(index: number, values: readonly number[]): OciSeccompArg[] {
  return sortedUnique(values).map((v) => ({
    index,
    op: 'SCMP_CMP_MASKED_EQ',
    value: LOW32,
    valueTwo: v,
  }));
}

/** The low 32 bits of an argument are none of `values`: the complement of low32In. */
export function low32NotIn(index: number, values: readonly number[]): OciSeccompArg[] {
  return gaps32(values).flatMap(([lo, hi]) =>
    alignedBlocks(lo, hi).map((b) => maskedBlock(index, b)),
  );
}

/**
 * The low `bits` bits of an argument (a field such as the socket type, below its flag bits)
 * are one of `values`.
 */
export function lowBitsIn(index: number, bits: number, values: readonly number[]): OciSeccompArg[] {
  const mask = 2 ** bits - 1;
  return sortedUnique(values).map((v) => {
    if (v > mask) throw new RangeError(`value ${v} does not fit in ${bits} bits`);
    return { index, op: 'SCMP_CMP_MASKED_EQ', value: mask, valueTwo: v };
  });
}

/** The low `bits` bits of an argument are none of `values`: the complement of lowBitsIn. */
export function lowBitsNotIn(
  index: number,
  bits: number,
  values: readonly number[],
): OciSeccompArg[] {
  const mask = 2 ** bits - 1;
  const inField = sortedUnique(values).filter((v) => v <= mask);
  const gaps: [number, number][] = [];
  let next = 0;
  for (const v of inField) {
    if (v > next) gaps.push([next, v - 1]);
    next = v + 1;
  }
  if (next <= mask) gaps.push([next, mask]);
  return gaps.flatMap(([lo, hi]) =>
    alignedBlocks(lo, hi).map((b) => ({
      index,
      op: 'SCMP_CMP_MASKED_EQ' as const,
      value: mask - (b.size - 1),
      valueTwo: b.base,
    })),
  );
}

/** Some bit of `mask` is set in the argument: one alternative per bit. */
export function anyBitSet(index: number, mask: number): OciSeccompArg[] {
  const conds: OciSeccompArg[] = [];
  for (let bit = 1; bit <= mask; bit *= 2) {
    if (Math.floor(mask / bit) % 2 === 1) {
      conds.push({ index, op: 'SCMP_CMP_MASKED_EQ', value: bit, valueTwo: bit });
    }
  }
  return conds;
}

/** No bit of `mask` is set in the argument. */
export function noBitSet(index: number, mask: number): OciSeccompArg[] {
  return [{ index, op: 'SCMP_CMP_MASKED_EQ', value: mask, valueTwo: 0 }];
}

/** Whether one comparison holds for a 64-bit argument value, as libseccomp evaluates it. */
function argHolds(cond: OciSeccompArg, arg: bigint): boolean {
  const v = BigInt(cond.value);
  switch (cond.op) {
    case 'SCMP_CMP_EQ':
      return arg === v;
    case 'SCMP_CMP_NE':
      return arg !== v;
    case 'SCMP_CMP_LT':
      return arg < v;
    case 'SCMP_CMP_LE':
      return arg <= v;
    case 'SCMP_CMP_GT':
      return arg > v;
    case 'SCMP_CMP_GE':
      return arg >= v;
    case 'SCMP_CMP_MASKED_EQ':
      return (arg & v) === BigInt(cond.valueTwo ?? 0);
  }
}

/**
 * Whether a rule's argument list matches the call, the way runc loads it: if two comparisons
 * share an index each becomes its own rule (any may match), otherwise all must hold.
 */
export function argsMatch(
  conds: readonly OciSeccompArg[] | undefined,
  args: readonly bigint[],
): boolean {
  if (!conds || conds.length === 0) return true;
  const at = (c: OciSeccompArg) => args[c.index] ?? 0n;
  const indexes = conds.map((c) => c.index);
  const shared = new Set(indexes).size !== indexes.length;
  return shared ? conds.some((c) => argHolds(c, at(c))) : conds.every((c) => argHolds(c, at(c)));
}
