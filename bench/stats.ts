/** Small helpers shared by the benchmarks: percentiles, sizes and the output format. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The middle value (the upper one of an even count). */
export const median = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 50);

export function summarize(samplesUs: number[]) {
  const s = [...samplesUs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { n: s.length, p50Us: round(percentile(s, 50)), p99Us: round(percentile(s, 99)), meanUs: round(mean), maxUs: round(s[s.length - 1]!) };
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export interface BenchResult {
  bench: string;
  target?: string;
  pass?: boolean;
  [k: string]: unknown;
}

/**
 * How big a run is: `full` gives the figures `npm run bench` reports; `tiny` only proves,
 * in seconds, that a benchmark still runs to its end (the suite's smoke test).
 */
export type BenchSize = 'full' | 'tiny';

/** A benchmark: its results, at the full size unless told. */
export type Bench = (size?: BenchSize) => Promise<BenchResult[]>;

/** A small deterministic generator (mulberry32), so every run builds the same journal: an integer in [0, n). */
export function rng(seed: number) {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4_294_967_296) * n);
  };
}
