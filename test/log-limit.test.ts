/** Bounded warnings (gateway/src/log-limit.ts): a few lines a window, the rest counted and summed up. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../gateway/src/log.js';
import { WarnFlood, WarnLimit } from '../gateway/src/log-limit.js';
import { waitFor } from './helpers.js';

describe('WarnLimit', () => {
  it('logs a few warnings per key and window, then says how many it held back', () => {
    const w = new WarnLimit(2, 1000);
    expect([w.take('a', 0), w.take('a', 1), w.take('a', 2), w.take('a', 3), w.take('b', 4)]).toEqual([0, 0, null, null, 0]);
    expect(w.take('a', 1000)).toBe(2);
  });
});

describe('WarnFlood', () => {
  function logged() {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    });
    return { lines, log: createLogger({ level: 'warn', format: 'json' }, sink) };
  }

  it('logs the first few of a window in full and one summary of the rest by kind, a window later; counts stay exact', async () => {
    const { lines, log } = logged();
    let now = 0;
    const flood = new WarnFlood(log, (n, kinds) => `${n} more rejected frames (${kinds})`, { perWindow: 3, windowMs: 100, clock: () => now });
    const shown = Array.from({ length: 1000 }, (_, i) => flood.warn(i % 4 === 0 ? 'crc' : 'cobs', { i }, `frame ${i} rejected`));
    expect(shown.filter(Boolean)).toHaveLength(3);
    expect(lines.map((l) => l.msg)).toEqual(['frame 0 rejected', 'frame 1 rejected', 'frame 2 rejected']);
    await waitFor(() => lines.length === 4, 2000, 'the summary');
    expect(lines[3]).toMatchObject({ held: { crc: 249, cobs: 748 }, last: 'frame 999 rejected', msg: '997 more rejected frames (cobs 748, crc 249); last: frame 999 rejected' });
    // the next window: a few in full again
    now = 100;
    flood.warn('crc', {}, 'again');
    expect(lines.at(-1)!.msg).toBe('again');
    flood.flush();
    expect(lines).toHaveLength(5);
  });

  it('sums up at stop what it held back', () => {
    const { lines, log } = logged();
    const flood = new WarnFlood(log, (n) => `${n} more`, { perWindow: 1, windowMs: 60_000 });
    flood.warn('a', {}, 'first');
    flood.warn('a', {}, 'second');
    flood.flush();
    expect(lines.map((l) => l.msg)).toEqual(['first', '1 more; last: second']);
  });
});
