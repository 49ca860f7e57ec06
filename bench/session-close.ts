/**
 * Closing a session: its `session.ended` event chained into the journal and its checkpoint
 * removed, in one transaction whose commit is fsynced (SessionStore.close, the path every
 * session end takes). Next to it, the same commit with synchronous=NORMAL in the same run,
 * which shows what the fsync costs on this disk.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal } from '../gateway/src/journal/journal.js';
import { SessionStore } from '../gateway/src/sessions/session-store.js';
import { summarize, type BenchResult, type BenchSize } from './stats.js';

/** Sessions closed and measured, after `warmup` that are not. */
const SIZES = { full: { n: 2000, warmup: 100 }, tiny: { n: 20, warmup: 2 } } satisfies Record<BenchSize, object>;

/** A closed session's `session.ended` data, numbered. */
export const ended = (i: number) => ({
  sessionId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  toolId: 'printer',
  affiliateId: 'ada',
  useType: 'commercial',
  startedAt: '2026-11-24T10:00:00.000Z',
  endedAt: '2026-11-24T11:30:00.000Z',
  clockSynced: { start: true, end: true },
  durationS: 5400,
  activeS: 5100,
  energyWh: 182.4,
  filament: [{ extruder: 0, mm: 12034.5, g: 35.89 }],
  filamentMm: 12034.5,
  filamentG: 35.89,
  reason: 'badge-out',
});

export async function benchSessionClose(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const { n, warmup } = SIZES[size];
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-close-'));
  const journal = Journal.open(dir);
  const store = new SessionStore(journal);
  const run = (durable: boolean) => {
    const samples: number[] = [];
    for (let i = 0; i < n + warmup; i++) {
      const e = ended(i + (durable ? 0 : 1_000_000));
      store.checkpoint(e.sessionId, 'printer', { usage: e });
      const t0 = performance.now();
      if (durable) store.close('printer', [e]);
      else journal.db.transaction(() => journal.record('session.ended', 'printer', e))();
      if (i >= warmup) samples.push((performance.now() - t0) * 1000);
    }
    return summarize(samples);
  };
  const fsync = run(true);
  const normal = run(false);
  journal.close();
  rmSync(dir, { recursive: true, force: true });
  return [
    { bench: 'session-close', path: 'SessionStore.close: session.ended chained + checkpoint removed, one transaction, fsynced (synchronous=FULL)', ...fsync, target: 'p99 reported' },
    { bench: 'session-close-no-fsync', path: 'the same event committed with synchronous=NORMAL, same run', ...normal },
  ];
}
