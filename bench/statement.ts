/**
 * Billing statements over a year of charges: a journal of one million charged sessions over
 * 12 months (~83k a month), five tools, 500 affiliates, the simulated lab's printer
 * co-financed by 11 co-owners (so its cash sessions have up to 15 parts), project sessions
 * valued but not owed, about a thousand corrections and the months closed as the year goes by.
 *
 * How the journal is filled: the first sessions go through the real write path
 * (`session.started`, then `session.ended` and `Billing.charge()` as SessionStore.close does,
 * in big transactions; a few `Billing.correct()`), and that rate is reported. Billing.charge()
 * reads what the co-owners have been paid so far, a query over every earlier charge of the
 * tool, so that path slows as the journal grows and a million would take hours. The rest of
 * the year replicates those charges and corrections exactly (the same event JSON but for the
 * session, affiliate, times and period; the same `charges`/`charge_parts` rows), chained with
 * the same hash function in batched transactions, as bench/journal.ts does.
 *
 * Then, on the reopened journal: one month's statement through `statement()` (target < 3 s),
 * beside it in the same run the plain SQL aggregation of the same rows (per-charge line items
 * and per-account totals, no events read), one affiliate's statement for the month, and the
 * month's Beancount export (which reads every earlier charge too, for its opening balances).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Billing, printerMaterials, type SessionRecord } from '../gateway/src/billing/billing.js';
import { billingSchema } from '../gateway/src/billing/config.js';
import { BillingError } from '../gateway/src/billing/money.js';
import { beancountExport } from '../gateway/src/billing/beancount.js';
import { statement } from '../gateway/src/billing/statement.js';
import { loadConfig } from '../gateway/src/config/load.js';
import { chainHash, verifyChain, type ChainRow } from '../gateway/src/journal/chain.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { median, rng, round, type BenchResult, type BenchSize } from './stats.js';

/**
 * `sessions` charged over the year; the first `real` through Billing.charge() in transactions
 * of `realBatch`, the rest replicating them in transactions of `fillBatch`; `realCorrections`
 * made through Billing.correct() among the real sessions, replicated ~1 per 1,000 sessions
 * after. The month's statement is timed `runs` times, one affiliate's `affiliateRuns` times.
 */
const SIZES = {
  full: { sessions: 1_000_000, real: 5_000, realBatch: 1_000, realCorrections: 40, fillBatch: 20_000, runs: 3, affiliateRuns: 20 },
  tiny: { sessions: 2_000, real: 500, realBatch: 100, realCorrections: 8, fillBatch: 500, runs: 1, affiliateRuns: 1 },
} satisfies Record<BenchSize, object>;
type Size = (typeof SIZES)[BenchSize];
const AFFILIATES = 500;
const YEAR_START = Date.UTC(2025, 0, 1);
const YEAR_MS = Date.UTC(2026, 0, 1) - YEAR_START;
const MONTH = '2025-06';
const TARGET_S = 3;

/** The simulated lab's billing (the co-financed printer), plus four tools without co-owners. */
function billingConfig() {
  const lab = loadConfig(fileURLToPath(new URL('../config/simulated-lab.yaml', import.meta.url))).config;
  if (!lab.billing?.tools.printer?.coOwnership) throw new Error('config/simulated-lab.yaml no longer has the co-financed printer');
  const tariffs = (rate: string, community: string, incrementMin: number, minimumCharge: string) => ({
    commercial: { hourlyRate: rate, billedTime: 'session', incrementMin, minimumCharge },
    community: { hourlyRate: community, billedTime: 'active', incrementMin, split: { maintenance: 60, infrastructure: 40, payback: 0 } },
    project: { hourlyRate: rate, billedTime: 'session', incrementMin, cash: false },
  });
  const cfg = billingSchema.parse({
    ...lab.billing,
    tools: {
      ...lab.billing.tools,
      'printer-2': { material: 'PETG', tariffs: tariffs('5.00', '1.50', 15, '1.50') },
      laser: { tariffs: tariffs('12.00', '4.00', 6, '3.00') },
      cnc: { tariffs: tariffs('15.00', '6.00', 30, '5.00') },
      embroidery: { tariffs: tariffs('4.00', '1.00', 15, '1.00') },
    },
  });
  const coOwners = lab.billing.tools.printer.coOwnership.coOwners.map((c) => c.affiliate);
  return { cfg, materials: printerMaterials(lab), coOwners };
}

const TOOLS = [
  { id: 'printer', weight: 35, printer: true },
  { id: 'printer-2', weight: 25, printer: true },
  { id: 'laser', weight: 20, printer: false },
  { id: 'cnc', weight: 10, printer: false },
  { id: 'embroidery', weight: 10, printer: false },
] as const;
const USE_TYPES = ['commercial', 'community', 'project'] as const;

interface Planned {
  toolId: string;
  affiliateId: string;
  useType: string;
  endedMs: number;
}

/** Who uses what when: the i-th session of the year, in order of its end. */
function planner(affiliates: readonly string[], sessions: number) {
  const rnd = rng(0x57a7e);
  const usual = affiliates.map(() => {
    const r = rnd(10);
    return r < 7 ? 'commercial' : r < 9 ? 'community' : 'project';
  });
  const step = YEAR_MS / sessions;
  return (i: number): Planned => {
    let w = rnd(100);
    const tool = TOOLS.find((t) => (w -= t.weight) < 0)!;
    const u = rnd(1_000_000) / 1_000_000;
    const a = Math.floor(affiliates.length * u * u); // a few heavy users, a long tail
    return {
      toolId: tool.id,
      affiliateId: affiliates[a]!,
      useType: rnd(10) === 0 ? USE_TYPES[rnd(3)]! : usual[a]!,
      endedMs: Math.round(YEAR_START + i * step + rnd(Math.floor(step * 1000)) / 1000),
    };
  };
}

const iso = (ms: number) => new Date(ms).toISOString();
const sessionId = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const month = (ms: number) => iso(ms).slice(0, 7);
const nextMonth = (p: string) => {
  const [y, m] = p.split('-').map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
};

/** The usage a session closes with, shaped as tool-sessions.ts journals it in `session.ended`. */
function usageOf(rnd: (n: number) => number, i: number, p: Planned) {
  const printer = TOOLS.find((t) => t.id === p.toolId)!.printer;
  const durationS = (3_000 + rnd(60_000) + (rnd(4) === 0 ? rnd(150_000) : 0)) / 10;
  const activeS = Math.floor((durationS * (55 + rnd(45))) / 100);
  const g = printer ? (1_000 + rnd(250_000)) / 1000 : 0;
  const technicianMin = rnd(10) === 0 ? 1 + rnd(60) : 0;
  const startedAt = iso(p.endedMs - Math.round(durationS * 1000));
  return {
    sessionId: sessionId(i),
    toolId: p.toolId,
    affiliateId: p.affiliateId,
    useType: p.useType,
    startedAt,
    endedAt: iso(p.endedMs),
    clockSynced: { start: true, end: true },
    durationS,
    activeS,
    energyWh: Math.round(durationS * (printer ? 0.05 : 0.3)) / 10,
    filament: printer ? [{ extruder: 0, mm: Math.round(g * 335_000) / 1000, g }] : [],
    filamentMm: printer ? Math.round(g * 335_000) / 1000 : 0,
    filamentG: g,
    technicianMin,
    technicians: technicianMin ? ['tomas'] : [],
    reason: 'badge-out',
  };
}
type Ended = ReturnType<typeof usageOf>;

/** A `charges` row and its `charge_parts` rows, every column as written (whatever the schema holds). */
interface ChargeRowShape {
  row: Record<string, unknown>;
  parts: unknown[][];
}
/** A charge made through Billing.charge(), to replicate. */
interface Template {
  toolId: string;
  useType: string;
  durationMs: number;
  ended: Ended;
  /** The charge event's JSON after `"period":"…"`. */
  tail: string;
  row: ChargeRowShape;
}
interface CorrectionTemplate {
  charge: Template;
  data: Record<string, unknown>;
  row: ChargeRowShape;
}

const chargeHead = (s: { sessionId: string; affiliateId: string; useType: string; startedAt: string; endedAt: string; period: string }) =>
  JSON.stringify({ sessionId: s.sessionId, affiliateId: s.affiliateId, useType: s.useType, startedAt: s.startedAt, endedAt: s.endedAt, period: s.period }).slice(0, -1);

/** Fills the journal in `dir`; returns what the real write path measured. */
function fill(dir: string, { sessions, real, realBatch, realCorrections, fillBatch }: Size) {
  const { cfg, materials, coOwners } = billingConfig();
  const affiliates = [...coOwners, 'tomas'];
  for (let a = 1; affiliates.length < AFFILIATES; a++) affiliates.push(`aff-${String(a).padStart(4, '0')}`);
  const plan = planner(affiliates, sessions);
  const rnd = rng(0x5e55);

  // ---- the real write path ----
  let clock = new Date(YEAR_START);
  const journal = Journal.open(dir, () => clock);
  const db = journal.db;
  const billing = new Billing(cfg, journal, materials);
  const endedById = new Map<string, Ended>();
  const close = db.transaction((batch: Ended[]) => {
    for (const e of batch) {
      clock = new Date(e.startedAt);
      journal.record('session.started', e.toolId, { sessionId: e.sessionId, toolId: e.toolId, affiliateId: e.affiliateId, useType: e.useType, startedAt: e.startedAt, clockSynced: true });
      clock = new Date(e.endedAt);
      // As SessionStore.close, in a transaction of many sessions instead of one fsynced commit each.
      journal.record('session.ended', e.toolId, { ...e });
      billing.charge(e satisfies SessionRecord);
    }
  });
  const rates: number[] = [];
  let i = 0;
  const t0 = performance.now();
  while (i < real) {
    const batch: Ended[] = [];
    for (; batch.length < realBatch && i < real; i++) {
      const e = usageOf(rnd, i, plan(i));
      endedById.set(e.sessionId, e);
      batch.push(e);
    }
    const t = performance.now();
    close(batch);
    rates.push(batch.length / ((performance.now() - t) / 1000));
  }
  const realS = (performance.now() - t0) / 1000;
  // Corrections of a few of them, through Billing.correct() (each its own fsynced commit).
  const changes = [
    () => ({ kind: 'technician', technicianMin: 15 + rnd(15) }) as const, // within billing.corrections: twice a 15-minute session
    () => ({ kind: 'material', filamentG: rnd(100_000) / 1000 }) as const,
    () => ({ kind: 'use-type', useType: USE_TYPES[rnd(3)]! }) as const,
    () => ({ kind: 'void' }) as const,
  ];
  for (let c = 0; c < realCorrections; c++) {
    const e = endedById.get(sessionId(rnd(real)))!;
    let change = changes[c % changes.length]!();
    if (change.kind === 'material' && !TOOLS.find((t) => t.id === e.toolId)!.printer) change = { kind: 'technician', technicianMin: 20 };
    if (change.kind === 'use-type' && change.useType === e.useType) change = { kind: 'use-type', useType: e.useType === 'project' ? 'commercial' : 'project' };
    clock = new Date(Date.parse(e.endedAt) + 3_600_000);
    try {
      billing.correct(e.sessionId, change, 'corrected by the custodian after a question from the affiliate', 'custodian');
    } catch (err) {
      if (!(err instanceof BillingError)) throw err; // a session picked twice and already void
    }
  }

  // ---- the templates: the exact event and row shapes written above ----
  const columns = (table: string) => (db.prepare(`SELECT name FROM pragma_table_info(?) ORDER BY cid`).pluck().all(table) as string[]).filter((c) => c !== 'event_id');
  const chargeColumns = columns('charges');
  const partColumns = columns('charge_parts');
  const rowOf = db.prepare(`SELECT ${chargeColumns.join(', ')} FROM charges WHERE event_id = ?`);
  const partsOf = db.prepare(`SELECT ${partColumns.join(', ')} FROM charge_parts WHERE event_id = ? ORDER BY rowid`).raw();
  const shape = (id: number): ChargeRowShape => ({ row: rowOf.get(id) as Record<string, unknown>, parts: partsOf.all(id) as unknown[][] });
  const templates = new Map<string, Template[]>();
  const bySession = new Map<string, Template>();
  for (const ev of db.prepare(`SELECT id, device_id AS toolId, data FROM events WHERE kind = 'billing.charge' ORDER BY id`).all() as { id: number; toolId: string; data: string }[]) {
    const d = JSON.parse(ev.data) as { sessionId: string; useType: string; period: string };
    const ended = endedById.get(d.sessionId)!;
    const head = chargeHead({ ...ended, period: d.period });
    if (!ev.data.startsWith(head)) throw new Error(`the charge event of ${d.sessionId} does not start as expected: ${ev.data.slice(0, 200)}`);
    const t: Template = { toolId: ev.toolId, useType: d.useType, durationMs: Math.round(ended.durationS * 1000), ended, tail: ev.data.slice(head.length), row: shape(ev.id) };
    const key = `${t.toolId}/${t.useType}`;
    templates.set(key, [...(templates.get(key) ?? []), t]);
    bySession.set(d.sessionId, t);
  }
  const corrections: CorrectionTemplate[] = [];
  for (const ev of db.prepare(`SELECT id, data FROM events WHERE kind = 'billing.correction' ORDER BY id`).all() as { id: number; data: string }[]) {
    const data = JSON.parse(ev.data) as Record<string, unknown>;
    const charge = bySession.get(data.sessionId as string)!;
    // One correction per replicated session: the template charge's first correction.
    if (corrections.some((c) => c.charge === charge)) continue;
    corrections.push({ charge, data, row: shape(ev.id) });
  }

  // ---- the rest of the year, replicated with prepared INSERTs ----
  const last = db.prepare('SELECT id, hash FROM events ORDER BY id DESC LIMIT 1').get() as { id: number; hash: string };
  const realEvents = last.id;
  let id = last.id;
  let prev = last.hash;
  const insertEvent = db.prepare('INSERT INTO events (id, at, kind, device_id, data, hash) VALUES (?, ?, ?, ?, ?, ?)');
  const insertCharge = db.prepare(`INSERT INTO charges (event_id, ${chargeColumns.join(', ')}) VALUES (?${', ?'.repeat(chargeColumns.length)})`);
  const insertPart = db.prepare(`INSERT INTO charge_parts (event_id, ${partColumns.join(', ')}) VALUES (?${', ?'.repeat(partColumns.length)})`);
  const event = (at: string, kind: string, deviceId: string | null, data: string) => {
    const row: ChainRow = { id: ++id, at, kind, device_id: deviceId, data, clock_synced: null };
    prev = chainHash(prev, row);
    insertEvent.run(row.id, row.at, row.kind, row.device_id, row.data, prev);
    return row.id;
  };
  /** The template's rows for another session: its own event, session, affiliate, period and the charge it corrects. */
  const project = (eventId: number, r: ChargeRowShape, own: { corrects: number | null; session_id: string; affiliate_id: string; period: string }) => {
    const row: Record<string, unknown> = { ...r.row, ...own };
    insertCharge.run(eventId, ...chargeColumns.map((c) => row[c]));
    for (const part of r.parts) insertPart.run(eventId, ...part);
  };
  // Months are closed on the 5th of the next; a correction after that lands in the first open month.
  const closed = new Set<string>();
  let toClose = '2025-01';
  const closeAt = (p: string) => Date.parse(`${nextMonth(p)}-05T09:00:00.000Z`);
  const openFrom = (p: string) => {
    while (closed.has(p)) p = nextMonth(p);
    return p;
  };
  interface Pending {
    dueMs: number;
    ct: CorrectionTemplate;
    corrects: number;
    sessionId: string;
    affiliateId: string;
    period: string;
  }
  let pending: Pending[] = [];
  const correct = (c: Pending) => {
    const period = openFrom(c.period);
    const d = c.ct.data;
    const data = { ...d, corrects: c.corrects, sessionId: c.sessionId, affiliateId: c.affiliateId, period };
    const eventId = event(iso(c.dueMs), 'billing.correction', c.ct.charge.toolId, JSON.stringify(data));
    project(eventId, c.ct.row, { corrects: c.corrects, session_id: c.sessionId, affiliate_id: c.affiliateId, period });
  };
  const replicate = db.transaction((from: number, to: number) => {
    for (let n = from; n < to; n++) {
      const p = plan(n);
      while (closeAt(toClose) <= p.endedMs) {
        event(iso(closeAt(toClose)), 'billing.period-closed', null, JSON.stringify({ period: toClose, by: 'custodian' }));
        closed.add(toClose);
        toClose = nextMonth(toClose);
      }
      if (pending.some((c) => c.dueMs <= p.endedMs)) {
        for (const c of pending) if (c.dueMs <= p.endedMs) correct(c);
        pending = pending.filter((c) => c.dueMs > p.endedMs);
      }
      const ct = rnd(1000) === 0 ? corrections[rnd(corrections.length)] : undefined;
      const pool = ct ? [ct.charge] : templates.get(`${p.toolId}/${p.useType}`)!;
      const t = pool[rnd(pool.length)]!;
      const s = { sessionId: sessionId(n), affiliateId: p.affiliateId, useType: t.useType, startedAt: iso(p.endedMs - t.durationMs), endedAt: iso(p.endedMs), period: openFrom(month(p.endedMs)) };
      event(s.startedAt, 'session.started', t.toolId, JSON.stringify({ sessionId: s.sessionId, toolId: t.toolId, affiliateId: s.affiliateId, useType: s.useType, startedAt: s.startedAt, clockSynced: true }));
      event(s.endedAt, 'session.ended', t.toolId, JSON.stringify({ ...t.ended, sessionId: s.sessionId, affiliateId: s.affiliateId, startedAt: s.startedAt, endedAt: s.endedAt }));
      const eventId = event(s.endedAt, 'billing.charge', t.toolId, chargeHead(s) + t.tail);
      project(eventId, t.row, { corrects: null, session_id: s.sessionId, affiliate_id: s.affiliateId, period: s.period });
      if (ct) pending.push({ dueMs: p.endedMs + (1 + rnd(20)) * 86_400_000 + rnd(86_400_000), ct, corrects: eventId, sessionId: s.sessionId, affiliateId: s.affiliateId, period: s.period });
    }
  });
  const t1 = performance.now();
  for (let from = real; from < sessions; from += fillBatch) replicate(from, Math.min(sessions, from + fillBatch));
  db.transaction(() => pending.forEach(correct))();
  const replicateS = (performance.now() - t1) / 1000;

  // The seam between the two paths must chain like the rest.
  const seam = verifyChain(db.prepare('SELECT id, at, kind, device_id, data, clock_synced, hash FROM events WHERE id <= ? ORDER BY id').iterate(realEvents + 30_000) as Iterable<ChainRow & { hash: string }>);
  if (seam.firstBreak) throw new Error(`the hash chain breaks: ${JSON.stringify(seam.firstBreak)}`);
  const counts = db.prepare(`SELECT COUNT(*) AS charges, SUM(kind = 'correction') AS corrections, (SELECT COUNT(*) FROM charge_parts) AS parts, (SELECT MAX(id) FROM events) AS events FROM charges`).get() as { charges: number; corrections: number; parts: number; events: number };
  if (counts.charges - counts.corrections !== sessions) throw new Error(`${counts.charges - counts.corrections} charged sessions, not ${sessions}`);
  journal.close();
  return { rates, realS, replicateS, counts, typical: affiliates[Math.floor(AFFILIATES / 10)]! };
}

function timed<T>(fn: () => T, runs: number): { result: T; seconds: number[] } {
  const seconds: number[] = [];
  let result!: T;
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    result = fn();
    seconds.push((performance.now() - t) / 1000);
  }
  return { result, seconds };
}

export async function benchStatement(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const sized = SIZES[size];
  const { runs, affiliateRuns } = sized;
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-statement-'));
  try {
    const f = fill(dir, sized);
    const journal = Journal.open(dir);
    try {
      const db = journal.db;
      const st = timed(() => statement(journal, { from: MONTH, to: MONTH }), runs);
      const entries = st.result.sessions.reduce((a, s) => a + s.entries.length, 0);

      // The floor: the same rows aggregated in SQL alone (line items per charge, totals per account), no events read.
      const lineItems = db.prepare(
        `SELECT c.*,
                COALESCE(SUM(CASE WHEN p.account IN ('maintenance', 'infrastructure', 'co-owner') THEN p.amount END), 0) AS usage,
                COALESCE(SUM(CASE WHEN p.account = 'material' THEN p.amount END), 0) AS material,
                COALESCE(SUM(CASE WHEN p.account = 'technician' THEN p.amount END), 0) AS technician
         FROM charges c LEFT JOIN charge_parts p ON p.event_id = c.event_id WHERE c.period = ? GROUP BY c.event_id`,
      );
      const accounts = db.prepare(
        `SELECT p.account, p.co_owner, SUM(p.amount) AS amount FROM charges c JOIN charge_parts p ON p.event_id = c.event_id
         WHERE c.period = ? GROUP BY p.account, p.co_owner`,
      );
      const floor = timed(() => ({ lines: lineItems.all(MONTH) as { total: number }[], accounts: accounts.all(MONTH) as { amount: number }[] }), runs);
      const cashTotal = floor.result.lines.reduce((a, l) => a + l.total, 0);
      if (floor.result.lines.length !== entries || cashTotal !== st.result.funds.total || floor.result.accounts.reduce((a, r) => a + r.amount, 0) !== st.result.funds.total) {
        throw new Error(`the SQL floor and the statement disagree: ${floor.result.lines.length} vs ${entries} entries, ${cashTotal} vs ${st.result.funds.total}`);
      }
      // The same queries with the rows left inside SQLite: what turning them into JS objects costs.
      const lineCount = db.prepare(`SELECT COUNT(*) FROM (${lineItems.source})`).pluck();
      const engine = timed(() => [lineCount.get(MONTH), accounts.all(MONTH)], runs);

      const affiliate = f.typical;
      const one = timed(() => statement(journal, { from: MONTH, to: MONTH, affiliate }), affiliateRuns);

      // The Beancount export of the month: its charges and corrections, and the months before summed into one opening transaction.
      const { cfg } = billingConfig();
      const exported = timed(() => beancountExport(journal, cfg, { from: MONTH, to: MONTH }, 'bench'), runs);

      const stS = median(st.seconds);
      const floorS = median(floor.seconds);
      const [first, ...rest] = f.rates;
      return [
        {
          bench: 'billing-charge',
          path: `session.started + session.ended + Billing.charge() (the real write path), in transactions of ${sized.realBatch.toLocaleString('en')} sessions`,
          sessions: sized.real,
          seconds: round(f.realS, 2),
          chargesPerSec: Math.round(first!),
          lastChargesPerSec: Math.round(rest.at(-1) ?? first!),
        },
        {
          bench: 'billing-statement',
          path: `statement() for one month of a journal of ${sized.sessions.toLocaleString('en')} charged sessions over 12 months (5 tools, ${AFFILIATES} affiliates, 11 co-owners), median of ${runs}`,
          sessions: sized.sessions,
          month: MONTH,
          monthSessions: st.result.sessions.length,
          entries,
          journalEvents: f.counts.events,
          chargeParts: f.counts.parts,
          corrections: f.counts.corrections,
          fillSeconds: round(f.realS + f.replicateS, 1),
          seconds: round(stS, 3),
          runs: st.seconds.map((s) => round(s, 3)),
          ofSqlFloor: round(stS / floorS, 1),
          target: `< ${TARGET_S} s`,
          pass: stS < TARGET_S,
        },
        {
          bench: 'billing-statement-sql-floor',
          path: 'the same month in plain SQL: line items per charge (GROUP BY event) and totals per account, same run',
          month: MONTH,
          rows: floor.result.lines.length + floor.result.accounts.length,
          seconds: round(floorS, 3),
          inSqliteSeconds: round(median(engine.seconds), 3),
        },
        {
          bench: 'billing-export-beancount',
          path: `beancountExport() of one month (the months before it summed into the opening transaction), same journal, median of ${runs}`,
          month: MONTH,
          transactions: (exported.result.match(/^\d{4}-\d{2}-\d{2} \* /gm) ?? []).length,
          megabytes: round(Buffer.byteLength(exported.result) / 1e6, 1),
          seconds: round(median(exported.seconds), 3),
        },
        {
          bench: 'billing-statement-affiliate',
          path: `statement() for one affiliate's month (index on period, affiliate), median of ${affiliateRuns}`,
          month: MONTH,
          affiliate,
          sessions: one.result.sessions.length,
          ms: round(median(one.seconds) * 1000, 2),
        },
      ];
    } finally {
      journal.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
