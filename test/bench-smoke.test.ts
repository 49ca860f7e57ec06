/**
 * Every benchmark `npm run bench` knows, at its tiny size: it must still run to its end and
 * return results the table can print. Figures are not looked at (they belong to the
 * benchmarks, on a quiet machine); this only keeps a benchmark from rotting unnoticed.
 */
import { describe, expect, it } from 'vitest';
import { BENCHES } from '../bench/benches.js';
import { figure } from '../bench/stats.js';
import { skipWithoutChromium, skipWithoutSocat } from './helpers.js';

describe('benchmarks at their tiny size', () => {
  it.each(Object.entries(BENCHES))('%s runs to its end', async (name, bench) => {
    const results = await bench('tiny');
    expect(results.length, name).toBeGreaterThan(0);
    for (const r of results) {
      // Only socat, Chromium or the AVR toolchain is missing on a laptop; in CI they are installed and nothing may skip.
      if (r.skipped !== undefined) {
        const firmwareMissing = r.bench === 'node-firmware-hello' && process.env.CI !== 'true';
        expect(skipWithoutSocat || skipWithoutChromium || firmwareMissing, `${r.bench} skipped: ${String(r.skipped)}`).toBe(true);
        continue;
      }
      expect(r.bench, name).toMatch(/\S/);
      expect(figure(r), `${r.bench} has no figure the table prints`).not.toBe('');
      // As its JSON line prints it: a NaN or an infinity (a figure of no samples) would print as null.
      expect(JSON.parse(JSON.stringify(r)), r.bench).toEqual(r);
    }
  }, 60_000);
});
