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

/** A result's main figure as the table prints it; '' when it has none the table knows. */
export function figure(r: BenchResult): string {
  return r.mbPerS !== undefined
    ? `${String(r.mbPerS)} MB/s`
    : r.framesPerSec !== undefined
    ? `${Number(r.framesPerSec).toLocaleString('en')} frames/s`
    : r.linesPerSec !== undefined
      ? `${Number(r.linesPerSec).toLocaleString('en')} lines/s`
      : r.eventsPerSec !== undefined
        ? `${Number(r.eventsPerSec).toLocaleString('en')} events/s`
      : r.recordsPerSec !== undefined
        ? `${Number(r.recordsPerSec).toLocaleString('en')} records/s` + (r.batchSize !== undefined ? `, batches of ${String(r.batchSize)}` : '')
      : r.messagesPerSec !== undefined
        ? `${Number(r.messagesPerSec).toLocaleString('en')} messages/s, ${String(r.cpuUsPerMessage)} µs CPU each`
      : r.rssMb !== undefined
        ? `${String(r.rssMb)} MB resident (+${String(r.rssDeltaMb)} MB)`
      : r.splitsPerSec !== undefined
        ? `${Number(r.splitsPerSec).toLocaleString('en')} splits/s`
      : r.chargesPerSec !== undefined
        ? `${Number(r.chargesPerSec).toLocaleString('en')} charges/s, ${Number(r.lastChargesPerSec).toLocaleString('en')}/s after ${Number(r.sessions).toLocaleString('en')}`
        : r.seconds !== undefined
          ? `${String(r.seconds)} s` + (r.events !== undefined ? ` for ${Number(r.events).toLocaleString('en')} events` : r.sessions !== undefined ? `, journal of ${Number(r.sessions).toLocaleString('en')} sessions` : '')
      : r.kb !== undefined
        ? `${String(r.kb)} KB`
      : r.ms !== undefined
        ? `${String(r.ms)} ms`
      : r.cpuPercentOfOneCore !== undefined
        ? `${String(r.cpuPercentOfOneCore)} % of one core`
        : r.p50Us !== undefined
          ? `p50 ${r.p50Us} µs, p99 ${r.p99Us} µs`
          : String(r.skipped ?? '');
}

const ratio = (r: BenchResult) =>
  r.p99VsRawEcho !== undefined ? `${r.p99VsRawEcho}x raw` : r.ofRawFloor !== undefined ? `${r.ofRawFloor}x raw` : r.ofSqlFloor !== undefined ? `${r.ofSqlFloor}x SQL` : '';

/** The readable table of a run: one row per result. */
export function table(results: BenchResult[]): string {
  const rows = results.map((r) => [r.bench, figure(r), ratio(r), r.target ?? '', r.pass === undefined ? '' : r.pass ? 'pass' : 'MISS']);
  const header = ['benchmark', 'figure', 'ratio', 'target', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((row) => line(row.map(String)))].join('\n');
}

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
