/**
 * Ledger delivery: how fast the outbox drains a backlog of 100,000 records into the ledger
 * simulator over the JSON batch API (target: at least 5,000 records/s here).
 *
 * The backlog: some 16,000 closed sessions on five tools, each journaled as the gateway does
 * (`session.ended` and `billing.charge`: prints with one or two extruders, technician help, a
 * co-financed printer whose charges pay three co-owners, valued project uses), in
 * transactions of 1,000 sessions, so that the journal's tap writes the mapping's real records
 * to the outbox: exactly 100,000 pending records. Each run drains a copy of that journal.
 *
 * Each run: a fresh LedgerSim (its own SQLite in a temp file, as a real ledger has one) and an
 * OutboxDrain with the JSON batch transport, timed until the backlog is 0; then the ledger's
 * truth must hold every record exactly once. Batches of 100 (the default) and 500; at 100 also
 * a ledger in memory, which shows what the simulator's disk costs. Beside each, in the same
 * run, the floor: the same request bodies (the outbox's JSON, batched per tool in the drain's
 * order) POSTed with fetch to a fresh LedgerSim, one at a time as the drain sends them, no
 * outbox. Then the same drain over Valueflows GraphQL (vf-graphql 0.9): the simulator executes
 * every request with graphql-js against the published schema and chooses the ids, and the client
 * sends a session's records in three requests (process, events, claims), so this rate is well
 * below the JSON API's. Last, the outbox alone: the drain with a transport that answers at once.
 * The simulator shares this process with the drain (as in the tests): every rate but the last
 * includes its work, most of the time. A CPU profile of the default run: simulator ~60 %
 * (validation, a prepare() per statement per record, an fsynced commit per request), the
 * outbox's SQL ~16 % (mostly settle's UPDATEs and their commits), transport and HTTP ~8 %, GC ~8 %.
 */
import Database from 'better-sqlite3';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { GraphqlTransport } from '../ledger-client/src/graphql.js';
import { JsonBatchTransport } from '../ledger-client/src/json-batch.js';
import type { LedgerTransport } from '../ledger-client/src/types.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { ledgerSchema } from '../gateway/src/ledger/config.js';
import { Outbox, OutboxDrain } from '../gateway/src/ledger/outbox.js';
import { LedgerSim } from '../simulators/src/ledger/ledger-sim.js';
import { round, type BenchResult, type BenchSize } from './stats.js';

/** Records in the backlog, from sessions journaled `sessionsPerTx` to a transaction. */
const SIZES = { full: { records: 100_000, sessionsPerTx: 1_000 }, tiny: { records: 500, sessionsPerTx: 20 } } satisfies Record<BenchSize, object>;
type Size = (typeof SIZES)[BenchSize];
const TARGET = 5_000;
const CTX = { gatewayId: 'bench-lab', currency: 'CAD', minorUnit: 2 };
const TOOLS = ['printer', 'printer-2', 'laser', 'cnc', 'resin'] as const;
const CO_OWNERS = ['ada', 'bo', 'chen'];

type Tool = (typeof TOOLS)[number];
type LedgerKind = 'file' | 'memory' | 'none';
type Api = 'json' | 'graphql';

interface SessionShape {
  tool: Tool;
  /** Grams per extruder (0: unused). */
  filament: number[];
  technicianMin: number;
  /** A project use: valued, not owed. */
  valued: boolean;
  /** A session that costs nothing: no charge is journaled. */
  free: boolean;
}

/** The records the mapping makes of a session's two events (checked against the outbox below). */
function recordCount(s: SessionShape): number {
  const ended = 2 + s.filament.filter((g) => g > 0).length + (s.technicianMin > 0 ? 1 : 0);
  if (s.free) return ended;
  if (s.valued) return ended + 1;
  const parts = (s.filament.some((g) => g > 0) ? 1 : 0) + (s.technicianMin > 0 ? 1 : 0) + 2 + (s.tool === 'printer' ? CO_OWNERS.length : 0);
  return ended + parts;
}

/** The i-th session of the mix. */
function shapeOf(i: number): SessionShape {
  const tool = TOOLS[i % TOOLS.length]!;
  const prints = tool === 'printer' || tool === 'printer-2';
  const filament = prints ? (i % 7 === 0 ? [31.2 + (i % 50), 12.5] : [18.4 + (i % 90), 0]) : tool === 'resin' ? [42.1] : [];
  return { tool, filament, technicianMin: i % 4 === 0 ? 12 + (i % 3) * 6 : 0, valued: i % 10 === 3, free: false };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** `session.ended` and `billing.charge` as the gateway journals them (cf. test/ledger-example.ts). */
function sessionEvents(i: number, s: SessionShape): { ended: Record<string, unknown>; charge: Record<string, unknown> | null } {
  const sessionId = `b3a1c0de-0000-4000-8000-${String(i).padStart(12, '0')}`;
  const affiliateId = `aff-${i % 500}`;
  const start = Date.UTC(2026, 10, 1) + i * 60_000;
  const durationS = s.free ? 0 : 600 + (i % 12) * 300 + 0.4;
  const end = start + Math.round(durationS * 1000);
  const useType = s.valued ? 'project' : 'commercial';
  const used = s.filament.filter((g) => g > 0);
  const ended = {
    sessionId,
    toolId: s.tool,
    affiliateId,
    useType,
    startedAt: iso(start),
    endedAt: iso(end),
    clockSynced: { start: true, end: true },
    durationS,
    activeS: Math.floor(durationS * 0.9),
    energyWh: round(durationS / 36, 1),
    filament: s.filament.map((g, extruder) => ({ extruder, mm: round(g * 335, 1), g })),
    filamentMm: round(used.reduce((a, g) => a + g * 335, 0), 1),
    filamentG: round(used.reduce((a, g) => a + g, 0), 2),
    ...(s.technicianMin > 0 ? { technicianMin: s.technicianMin, technicians: ['tomas'] } : {}),
    reason: 'badge-out',
  };
  if (s.free) return { ended, charge: null };
  const billedMin = Math.ceil(durationS / 60 / 15) * 15;
  const usage = billedMin * 10;
  const material = Math.round(used.reduce((a, g) => a + g, 0) * 3);
  const technician = Math.round((s.technicianMin / 60) * 2500);
  const co = s.tool === 'printer' ? CO_OWNERS.map((affiliateId, k) => ({ account: 'co-owner', affiliateId, amount: Math.round(usage * 0.5 * [0.4, 0.35, 0.25][k]!) })) : [];
  const coTotal = co.reduce((a, p) => a + p.amount, 0);
  const maintenance = Math.round((usage - coTotal) * 0.6);
  const parts = [
    ...(material ? [{ account: 'material', amount: material }] : []),
    ...(technician ? [{ account: 'technician', amount: technician }] : []),
    { account: 'maintenance', amount: maintenance },
    { account: 'infrastructure', amount: usage - coTotal - maintenance },
    ...co,
  ];
  const charge = {
    sessionId,
    affiliateId,
    useType,
    startedAt: iso(start),
    endedAt: iso(end),
    period: '2026-11',
    currency: 'CAD',
    inputs: {
      usage: { durationS, activeS: ended.activeS, filamentG: ended.filamentG, technicianMin: s.technicianMin, ownMaterial: false },
      tariff: { hourlyRate: '6.00', billedTime: 'session', incrementMin: 15, minimumCharge: '2.00', chargeMaterial: true, cash: !s.valued },
      shares: { maintenance: 60, infrastructure: 40, payback: s.tool === 'printer' ? 50 : 0 },
      minorUnit: 2,
      materialPricePerGram: '0.030',
      technicianRatePerHour: '25.00',
    },
    price: { billedMin, usage, material, technician, total: usage + material + technician, cash: !s.valued },
    parts,
  };
  return { ended, charge };
}

/** A journal whose outbox holds `records` pending records. */
interface Backlog {
  file: string;
  records: number;
}

/** Journals sessions until the outbox holds exactly `records` records; the last few are small ones that make the count. */
function buildBacklog(dir: string, { records, sessionsPerTx }: Size): Backlog & { sessions: number; events: number; seconds: number } {
  const journal = Journal.open(dir);
  new Outbox(journal, CTX).attach(() => {});
  const shapes: SessionShape[] = [];
  let left = records;
  for (let i = 0; left >= 20; i++) {
    const s = shapeOf(i);
    shapes.push(s);
    left -= recordCount(s);
  }
  // 2 records: a free session (no charge); 3: a valued one without material or help.
  const tail = (valued: boolean): SessionShape => ({ tool: 'laser', filament: [], technicianMin: 0, valued, free: !valued });
  if (left % 2 === 1) {
    shapes.push(tail(true));
    left -= 3;
  }
  for (; left > 0; left -= 2) shapes.push(tail(false));

  const t0 = performance.now();
  let events = 0;
  const write = journal.db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const { ended, charge } = sessionEvents(i, shapes[i]!);
      journal.record('session.ended', shapes[i]!.tool, ended);
      events++;
      if (charge) {
        journal.record('billing.charge', shapes[i]!.tool, charge);
        events++;
      }
    }
  });
  for (let from = 0; from < shapes.length; from += sessionsPerTx) write(from, Math.min(shapes.length, from + sessionsPerTx));
  const seconds = (performance.now() - t0) / 1000;
  const c = new Outbox(journal, CTX).counts();
  if (c.pending !== records || c.dead !== 0) throw new Error(`the backlog has ${c.pending} pending and ${c.dead} dead records, not ${records} pending`);
  const file = journal.file;
  journal.close();
  return { file, records, sessions: shapes.length, events, seconds };
}

/** Every one of the `expected` outbox records at the ledger exactly once, and nothing else. */
function verify(journal: Journal, sim: LedgerSim | null, expected: number): string | null {
  const ids = journal.db.prepare(`SELECT record_id FROM outbox WHERE state = 'delivered' ORDER BY seq`).pluck().all() as string[];
  if (ids.length !== expected) return `${ids.length} records delivered, not ${expected}`;
  if (!sim) return null;
  const { countPerId, records } = sim.truth();
  const wrong = ids.find((id) => countPerId[id] !== 1);
  if (wrong) return `record ${wrong} is at the ledger ${countPerId[wrong] ?? 0} times`;
  if (records.length !== expected) return `the ledger holds ${records.length} records, not ${expected}`;
  return null;
}

/** Drains a copy of the backlog into a fresh ledger (`none`: a transport that answers every record delivered at once: the outbox alone). */
async function drain(backlog: Backlog, dir: string, batchSize: number, ledger: LedgerKind, api: Api = 'json'): Promise<{ recordsPerSec: number; seconds: number; batches: number }> {
  mkdirSync(join(dir, 'gw'));
  copyFileSync(backlog.file, join(dir, 'gw', 'journal.sqlite'));
  const sim = ledger === 'none' ? null : await LedgerSim.start({ db: ledger === 'file' ? join(dir, 'ledger.sqlite') : ':memory:' });
  const journal = Journal.open(join(dir, 'gw'));
  try {
    const outbox = new Outbox(journal, CTX);
    const cfg = ledgerSchema.parse({ url: sim?.url ?? 'http://127.0.0.1:9', gatewayId: CTX.gatewayId, ...(batchSize === 100 ? {} : { batchSize }) });
    if (cfg.batchSize !== batchSize) throw new Error(`the default batchSize is ${cfg.batchSize}, not ${batchSize}`);
    const inner: LedgerTransport = sim
      ? api === 'graphql'
        ? new GraphqlTransport({ url: `${cfg.url}/graphql`, timeoutMs: cfg.timeoutMs, flavour: 'vf-graphql', gatewayId: CTX.gatewayId })
        : new JsonBatchTransport({ url: cfg.url, timeoutMs: cfg.timeoutMs })
      : { name: 'none', send: async (rs) => rs.map((r) => ({ kind: 'delivered', id: r.id })), lookup: async () => new Set(), totals: async () => ({ records: 0, sums: {} }) };
    let batches = 0;
    const transport: LedgerTransport = { name: inner.name, send: (rs) => (batches++, inner.send(rs)), lookup: (rs) => inner.lookup(rs), totals: (from, to) => inner.totals(from, to) };
    const d = new OutboxDrain(outbox, transport, cfg, pino({ level: 'silent' }));
    const anyPending = journal.db.prepare(`SELECT 1 FROM outbox WHERE state = 'pending' LIMIT 1`).pluck();
    const t0 = performance.now();
    d.start();
    while (anyPending.get() !== undefined) await new Promise((r) => setTimeout(r, 5));
    const seconds = (performance.now() - t0) / 1000;
    await d.stop();
    const problem = verify(journal, sim, backlog.records);
    if (problem) throw new Error(`ledger drain (${api}, batch ${batchSize}, ledger ${ledger}): ${problem}`);
    return { recordsPerSec: backlog.records / seconds, seconds, batches };
  } finally {
    journal.close();
    await sim?.close();
  }
}

/** The drain's requests without the drain: the outbox's records per tool, batched, in its round-robin order, as ready-made bodies. */
function rawBodies(backlog: string, batchSize: number): string[] {
  const db = new Database(backlog, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare(`SELECT tool_id, record FROM outbox WHERE state = 'pending' ORDER BY tool_id, seq`).raw().all() as [string, string][];
    const perTool = new Map<string, string[][]>();
    for (const [tool, record] of rows) {
      const batches = perTool.get(tool) ?? (perTool.set(tool, []), perTool.get(tool)!);
      const last = batches.at(-1);
      if (last && last.length < batchSize) last.push(record);
      else batches.push([record]);
    }
    // One batch of each tool in turn, tools in order of id: as OutboxDrain goes round them.
    const bodies: string[] = [];
    const rounds = Math.max(...[...perTool.values()].map((b) => b.length));
    for (let round = 0; round < rounds; round++) {
      for (const batches of perTool.values()) if (batches[round]) bodies.push(`{"records":[${batches[round]!.join(',')}]}`);
    }
    return bodies;
  } finally {
    db.close();
  }
}

async function rawPost(bodies: string[], records: number, dir: string, simDb: Exclude<LedgerKind, 'none'>): Promise<{ recordsPerSec: number; seconds: number }> {
  const sim = await LedgerSim.start({ db: simDb === 'file' ? join(dir, 'ledger.sqlite') : ':memory:' });
  try {
    const url = `${sim.url}/records`;
    let stored = 0;
    const t0 = performance.now();
    for (const body of bodies) {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body });
      const reply = (await res.json()) as { results: { status: string }[] };
      if (res.status !== 200) throw new Error(`raw POST: HTTP ${res.status}: ${JSON.stringify(reply).slice(0, 300)}`);
      stored += reply.results.filter((r) => r.status === 'stored').length;
    }
    const seconds = (performance.now() - t0) / 1000;
    if (stored !== records || sim.truth().records.length !== records) throw new Error(`raw POST stored ${stored} records, not ${records}`);
    return { recordsPerSec: records / seconds, seconds };
  } finally {
    await sim.close();
  }
}

export async function benchLedger(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const sized = SIZES[size];
  const root = mkdtempSync(join(tmpdir(), 'ovn-bench-ledger-'));
  let n = 0;
  const runDir = () => {
    const d = join(root, `run-${++n}`);
    mkdirSync(d);
    return d;
  };
  const where = { file: 'LedgerSim with its SQLite in a file (WAL)', memory: 'LedgerSim with its SQLite in memory' };
  try {
    const built = buildBacklog(join(root, 'backlog'), sized);
    const { records } = built;
    const results: BenchResult[] = [
      { bench: 'ledger-backlog', path: `session.ended + billing.charge journaled in transactions of ${sized.sessionsPerTx.toLocaleString('en')} sessions, the tap mapping them into the outbox`, sessions: built.sessions, events: built.events, records, seconds: round(built.seconds, 2) },
    ];
    // The ledger in a file at both batch sizes; in memory at the default only (what the simulator's disk costs).
    for (const [batchSize, ledger] of [[100, 'file'], [500, 'file'], [100, 'memory']] as const) {
      const raw = await rawPost(rawBodies(built.file, batchSize), records, runDir(), ledger);
      const d = await drain(built, runDir(), batchSize, ledger);
      const suffix = ledger === 'file' ? '' : '-memdb';
      results.push(
        {
          bench: `ledger-drain${suffix}`,
          path: `OutboxDrain + JsonBatchTransport from a backlog on disk to ${where[ledger]}, in this process; then truth: each record once`,
          records,
          batchSize,
          batches: d.batches,
          seconds: round(d.seconds, 2),
          recordsPerSec: Math.round(d.recordsPerSec),
          ofRawFloor: round(d.recordsPerSec / raw.recordsPerSec, 2),
          ...(ledger === 'file' ? { target: '>= 5,000/s', pass: d.recordsPerSec >= TARGET } : {}),
        },
        { bench: `ledger-raw-post${suffix}`, path: `the same request bodies POSTed with fetch to a fresh ${where[ledger]}, one at a time, no outbox`, records, batchSize, recordsPerSec: Math.round(raw.recordsPerSec) },
      );
    }
    // The same drain over Valueflows GraphQL: the simulator executes every request against the published schema.
    const gql = await drain(built, runDir(), 100, 'file', 'graphql');
    results.push({
      bench: 'ledger-drain-graphql',
      path: `OutboxDrain + GraphqlTransport (vf-graphql) from a backlog on disk to ${where.file}, in this process; then truth: each record once`,
      records,
      batchSize: 100,
      batches: gql.batches,
      seconds: round(gql.seconds, 2),
      recordsPerSec: Math.round(gql.recordsPerSec),
    });
    // The outbox's own ceiling: the same drain with a transport that answers at once (no HTTP, no ledger).
    const alone = await drain(built, runDir(), 100, 'none');
    results.push({ bench: 'ledger-drain-no-ledger', path: 'the same drain, a transport answering every record delivered at once: the outbox alone (SELECT, JSON, UPDATE + commit)', records, batchSize: 100, recordsPerSec: Math.round(alone.recordsPerSec) });
    return results;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
