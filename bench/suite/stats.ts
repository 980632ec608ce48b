// Sample statistics: nearest-rank percentiles, as the other bench files report them.

export interface Stat {
  n: number;
  p50: number;
  p95: number;
  min: number;
  max: number;
}

export function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export function stat(xs: number[]): Stat {
  if (xs.length === 0) return { n: 0, p50: NaN, p95: NaN, min: NaN, max: NaN };
  return {
    n: xs.length,
    p50: percentile(xs, 0.5),
    p95: percentile(xs, 0.95),
    min: Math.min(...xs),
    max: Math.max(...xs),
  };
}

export const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

export function now(): number {
  return performance.now();
}

/** Milliseconds an async step takes. */
export async function timeIt(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}
