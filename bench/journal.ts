/**
 * The journal: appending events (each chained to the previous by SHA-256) and `verify --quick`
 * over a journal of one million events: the chain walk with SQLite's quick_check beside it
 * (target: under 5 s here).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainHash, GENESIS, type ChainRow } from '../gateway/src/journal/chain.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { checkJournal, describeCheck } from '../gateway/src/journal/verify.js';
import { round, type BenchResult, type BenchSize } from './stats.js';

/** Events appended one by one, and in the journal that is verified. */
const SIZES = { full: { appends: 20_000, events: 1_000_000 }, tiny: { appends: 200, events: 2_000 } } satisfies Record<BenchSize, object>;

export async function benchJournal(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const { appends, events } = SIZES[size];
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-journal-'));
  const journal = Journal.open(dir);

  // Appending through the real path, one transaction per event (as the gateway does).
  const t0 = performance.now();
  for (let i = 0; i < appends; i++) journal.record('device.hello', 'node-1', { nodeId: 'node-1', firmware: '1.4.2', bootId: i });
  const appendPerSec = appends / ((performance.now() - t0) / 1000);

  // Fill up to all the events quickly (same chain function, batched), then verify the file.
  const db = journal.db;
  const insert = db.prepare('INSERT INTO events (id, at, kind, device_id, data, clock_synced, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
  let prev = (db.prepare('SELECT hash FROM events ORDER BY id DESC LIMIT 1').get() as { hash: string } | undefined)?.hash ?? GENESIS;
  const fill = db.transaction((from: number, to: number) => {
    for (let id = from; id <= to; id++) {
      const row: ChainRow = { id, at: new Date(1_790_000_000_000 + id * 1000).toISOString(), kind: 'device.meter', device_id: 'node-1', data: `{"energyMwh":${id},"relayOnS":${id >> 2}}`, clock_synced: 1 };
      prev = chainHash(prev, row);
      insert.run(row.id, row.at, row.kind, row.device_id, row.data, row.clock_synced, prev);
    }
  });
  for (let from = appends + 1; from <= events; from += 100_000) fill(from, Math.min(events, from + 99_999));
  journal.close();

  const file = join(dir, 'journal.sqlite');
  const t1 = performance.now();
  const check = await checkJournal(file, { quick: true });
  const verifyS = (performance.now() - t1) / 1000;
  const report = describeCheck(file, check);
  if (!report.ok || !('events' in check.chain) || check.chain.events !== events) throw new Error(`verify of ${events} events: ${report.lines.join('\n')}`);
  new Database(join(dir, 'journal.sqlite')).close();
  rmSync(dir, { recursive: true, force: true });

  return [
    { bench: 'journal-append', path: 'Journal.record: read the chain end, SHA-256, insert, one transaction each (WAL, synchronous=NORMAL)', events: appends, eventsPerSec: Math.round(appendPerSec) },
    { bench: 'journal-verify', path: 'ovn-gateway verify --quick over a journal of one million events (read-only: SHA-256 per event, quick_check in a worker thread)', events, seconds: round(verifyS, 2), target: '< 5 s', pass: verifyS < 5 },
  ];
}
