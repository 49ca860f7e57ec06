/**
 * Statements for the custodian, read from the `charges` projection: each session of the
 * period with its line items (the original charge, the corrections that landed in the
 * period, the net), totals per fund, per affiliate and per tool. Periods are months
 * (YYYY-MM), inclusive. Amounts are minor units; cash and value (uses with no cash charge)
 * are kept apart.
 */
import type { Material } from '../devices/printer/job.js';
import type { Journal } from '../journal/journal.js';

export interface StatementQuery {
  from: string;
  to: string;
  affiliate?: string;
  tool?: string;
}

export interface LineItems {
  usage: number;
  material: number;
  technician: number;
  total: number;
}

export interface StatementEntry {
  eventId: number;
  kind: 'charge' | 'correction';
  period: string;
  cash: boolean;
  useType: string;
  /** Money owed (a correction: the change). */
  items: LineItems;
  /** Where the usage fee goes: the funds and the co-owners' payback (they sum to items.usage). */
  split: FundSplit;
  /** The value of a use with no cash charge (a correction: the change). */
  value: number;
  /** A correction: what changed and why. */
  correction?: { corrects: number; change: unknown; reason: string; by: string };
}

export interface FundSplit {
  maintenance: number;
  infrastructure: number;
  payback: number;
}

export interface StatementSession {
  sessionId: string;
  toolId: string;
  affiliateId: string;
  /** As the affiliates table has it; null: not (or no longer) there. */
  affiliateName: string | null;
  startedAt: string | null;
  endedAt: string | null;
  billedMin: number | null;
  /** Where the session's filament figure came from (a print job's); null: no print job, or charged before it was recorded. */
  material: Material | null;
  /** The filament charged with the session, g (a correction of the grams shows in its entry); null: none recorded. */
  filamentG: number | null;
  entries: StatementEntry[];
  /** The sum of the entries in this statement. */
  net: LineItems;
  netValue: number;
  cash: boolean;
}

export interface Statement {
  from: string;
  to: string;
  affiliate: string | null;
  tool: string | null;
  sessions: StatementSession[];
  /** Cash owed into each fund. Payback is per co-owner too. */
  funds: { material: number; technician: number; maintenance: number; infrastructure: number; payback: number; total: number };
  payback: { affiliateId: string; amount: number }[];
  /** The value of uses with no cash charge (e.g. project use), recorded but not owed. */
  value: number;
  affiliates: { affiliateId: string; sessions: number; total: number }[];
  tools: { toolId: string; sessions: number; total: number }[];
}

const zero = (): LineItems => ({ usage: 0, material: 0, technician: 0, total: 0 });
const add = (a: LineItems, b: LineItems): LineItems => ({ usage: a.usage + b.usage, material: a.material + b.material, technician: a.technician + b.technician, total: a.total + b.total });

interface Row {
  eventId: number;
  kind: 'charge' | 'correction';
  sessionId: string;
  toolId: string;
  affiliateId: string;
  affiliateName: string | null;
  useType: string;
  period: string;
  cash: number;
  usage: number;
  maintenance: number;
  infrastructure: number;
  payback: number;
  material: number;
  technician: number;
  total: number;
  value: number;
  data: string;
}

export function statement(journal: Journal, q: StatementQuery): Statement {
  // One month as an equality, so that an affiliate's month is one seek in charges_by_period (period, affiliate_id).
  const where = [q.from === q.to ? 'c.period = ?' : 'c.period BETWEEN ? AND ?'];
  const args: string[] = q.from === q.to ? [q.from] : [q.from, q.to];
  for (const [column, value] of [['c.affiliate_id', q.affiliate], ['c.tool_id', q.tool]] as const) {
    if (value === undefined) continue;
    where.push(`${column} = ?`);
    args.push(value);
  }
  const filter = where.join(' AND ');
  // The period's charges, picked through an index (period and affiliate, or tool), then read in
  // event order. With the filter on the joined query itself SQLite scanned every charge ever made
  // in event order to spare itself a sort, so even one affiliate's month read the whole table.
  const selected = `SELECT c.event_id FROM charges c WHERE ${filter}`;
  // Line items per charge in SQL: one pass over the parts of the period's charges. What the
  // statement needs of each event, in one json_extract (every call parses the whole event again).
  const rows = journal
    .prepared(
      `SELECT c.event_id AS eventId, c.kind, c.session_id AS sessionId, c.tool_id AS toolId, c.affiliate_id AS affiliateId, (SELECT a.name FROM affiliates a WHERE a.id = c.affiliate_id) AS affiliateName, c.use_type AS useType,
              c.period, c.cash, c.total, c.value,
              COALESCE(SUM(CASE WHEN p.account IN ('maintenance', 'infrastructure', 'co-owner') THEN p.amount END), 0) AS usage,
              COALESCE(SUM(CASE WHEN p.account = 'maintenance' THEN p.amount END), 0) AS maintenance,
              COALESCE(SUM(CASE WHEN p.account = 'infrastructure' THEN p.amount END), 0) AS infrastructure,
              COALESCE(SUM(CASE WHEN p.account = 'co-owner' THEN p.amount END), 0) AS payback,
              COALESCE(SUM(CASE WHEN p.account = 'material' THEN p.amount END), 0) AS material,
              COALESCE(SUM(CASE WHEN p.account = 'technician' THEN p.amount END), 0) AS technician,
              CASE c.kind WHEN 'charge' THEN json_extract(e.data, '$.startedAt', '$.endedAt', '$.price.billedMin', '$.material', '$.inputs.usage.filamentG')
                          ELSE json_extract(e.data, '$.corrects', '$.change', '$.reason', '$.by') END AS data
       FROM charges c JOIN events e ON e.id = c.event_id LEFT JOIN charge_parts p ON p.event_id = c.event_id
       WHERE c.event_id IN (${selected}) GROUP BY c.event_id ORDER BY c.event_id`,
    )
    .all(...args) as Row[];

  const sessions = new Map<string, StatementSession>();
  for (const r of rows) {
    // A charge: [startedAt, endedAt, billedMin, material, filamentG]; a correction: [corrects, change, reason, by] (null where absent).
    const d = JSON.parse(r.data) as unknown[];
    let s = sessions.get(r.sessionId);
    if (!s) {
      s = { sessionId: r.sessionId, toolId: r.toolId, affiliateId: r.affiliateId, affiliateName: r.affiliateName, startedAt: null, endedAt: null, billedMin: null, material: null, filamentG: null, entries: [], net: zero(), netValue: 0, cash: r.cash === 1 };
      sessions.set(r.sessionId, s);
    }
    if (r.kind === 'charge') Object.assign(s, { startedAt: d[0] as string | null, endedAt: d[1] as string | null, billedMin: d[2] as number | null, material: (d[3] as Material | null) ?? null, filamentG: (d[4] as number | null) ?? null });
    const items = { usage: r.usage, material: r.material, technician: r.technician, total: r.total };
    s.entries.push({
      eventId: r.eventId,
      kind: r.kind,
      period: r.period,
      cash: r.cash === 1,
      useType: r.useType,
      items,
      split: { maintenance: r.maintenance, infrastructure: r.infrastructure, payback: r.payback },
      value: r.value,
      ...(r.kind === 'correction' ? { correction: { corrects: d[0] as number, change: d[1] ?? null, reason: (d[2] as string | null) ?? '', by: (d[3] as string | null) ?? '' } } : {}),
    });
    s.net = add(s.net, items);
    s.netValue += r.value;
    s.cash = r.cash === 1;
  }

  const funds = journal
    .prepared(
      `SELECT p.account, p.co_owner AS coOwner, SUM(p.amount) AS amount FROM charge_parts p
       WHERE p.event_id IN (${selected}) GROUP BY p.account, p.co_owner ORDER BY p.account, p.co_owner`,
    )
    .all(...args) as { account: string; coOwner: string | null; amount: number }[];
  const fund = (a: string) => funds.filter((f) => f.account === a).reduce((x, f) => x + f.amount, 0);
  const byKey = (key: 'affiliateId' | 'toolId') => {
    const m = new Map<string, { sessions: Set<string>; total: number }>();
    for (const r of rows) {
      if (r.total === 0 && r.value !== 0) continue; // valued use only: no money
      const e = m.get(r[key]) ?? { sessions: new Set<string>(), total: 0 };
      e.sessions.add(r.sessionId);
      e.total += r.total;
      m.set(r[key], e);
    }
    return [...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => ({ [key]: k, sessions: v.sessions.size, total: v.total }));
  };
  const f = { material: fund('material'), technician: fund('technician'), maintenance: fund('maintenance'), infrastructure: fund('infrastructure'), payback: fund('co-owner') };
  return {
    from: q.from,
    to: q.to,
    affiliate: q.affiliate ?? null,
    tool: q.tool ?? null,
    sessions: [...sessions.values()],
    funds: { ...f, total: f.material + f.technician + f.maintenance + f.infrastructure + f.payback },
    payback: funds.filter((x) => x.account === 'co-owner').map((x) => ({ affiliateId: x.coOwner!, amount: x.amount })),
    value: rows.reduce((a, r) => a + r.value, 0),
    affiliates: byKey('affiliateId') as Statement['affiliates'],
    tools: byKey('toolId') as Statement['tools'],
  };
}
