/** Small helpers shared by the benchmarks: percentiles and the output format. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

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
