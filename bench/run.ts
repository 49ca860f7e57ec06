/**
 * `npm run bench`: every benchmark prints one JSON line, then a readable table;
 * `npm run bench -- api mqtt` runs only those. Figures are measured, not asserted: compare
 * runs on the same machine.
 */
import { benchApi } from './api.js';
import { benchBadgeRelay } from './badge-relay.js';
import { benchSplit } from './billing.js';
import { benchCodec } from './codec.js';
import { benchJournal } from './journal.js';
import { benchLedger } from './ledger.js';
import { benchMqtt } from './mqtt.js';
import { benchPrinter } from './printer.js';
import { benchRoundTrip } from './roundtrip.js';
import { benchSessionClose } from './session-close.js';
import { benchStatement } from './statement.js';
import type { BenchResult } from './stats.js';

const BENCHES: Record<string, () => Promise<BenchResult[]>> = {
  codec: benchCodec,
  roundtrip: benchRoundTrip,
  'badge-relay': benchBadgeRelay,
  'session-close': benchSessionClose,
  printer: benchPrinter,
  journal: benchJournal,
  mqtt: benchMqtt,
  billing: benchSplit,
  statement: benchStatement,
  ledger: benchLedger,
  api: benchApi,
};
const asked = process.argv.slice(2);
const unknown = asked.filter((n) => !(n in BENCHES));
if (unknown.length) {
  console.error(`unknown benchmark: ${unknown.join(', ')} (known: ${Object.keys(BENCHES).join(', ')})`);
  process.exit(2);
}

const results: BenchResult[] = [];
for (const bench of (asked.length ? asked : Object.keys(BENCHES)).map((n) => BENCHES[n]!)) {
  for (const r of await bench()) {
    console.log(JSON.stringify(r));
    results.push(r);
  }
}

const figure = (r: BenchResult) =>
  r.framesPerSec !== undefined
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
      : r.ms !== undefined
        ? `${String(r.ms)} ms`
      : r.cpuPercentOfOneCore !== undefined
        ? `${String(r.cpuPercentOfOneCore)} % of one core`
        : r.p50Us !== undefined
          ? `p50 ${r.p50Us} µs, p99 ${r.p99Us} µs`
          : String(r.skipped ?? '');
const ratio = (r: BenchResult) =>
  r.p99VsRawEcho !== undefined ? `${r.p99VsRawEcho}x raw` : r.ofRawFloor !== undefined ? `${r.ofRawFloor}x raw` : r.ofSqlFloor !== undefined ? `${r.ofSqlFloor}x SQL` : '';
const rows = results.map((r) => [r.bench, figure(r), ratio(r), r.target ?? '', r.pass === undefined ? '' : r.pass ? 'pass' : 'MISS']);
const header = ['benchmark', 'figure', 'ratio', 'target', ''];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
console.log('\n' + line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of rows) console.log(line(row.map(String)));
