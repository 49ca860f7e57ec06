/**
 * Billing at the gateway: a charge for each closed session, journaled in the same
 * transaction as the session's end; corrections as new events that reference the charge;
 * accounting periods (months, UTC) that the custodian closes; statements and payback
 * progress read from the `charges` projection.
 *
 * Periods: a charge counts in the month its session ended; once a month is closed, a
 * correction to one of its sessions lands in the first open month after it.
 */
import type { JobMetered, Material } from '../devices/printer/job.js';
import type { Journal } from '../journal/journal.js';
import { beancountExport, type ExportQuery } from './beancount.js';
import { carryAdded, computeCharge, partsDelta, partsPlus, type Charge, type ChargeInputs } from './charge.js';
import type { BillingConfig } from './config.js';
import { balances, invoices, numberInvoices, payments, recordPayment, type Balance, type Invoice, type Payment, type PaymentInput } from './invoice.js';
import type { Language } from './messages.js';
import { affiliateMonth, affiliateMonthPdf, type AffiliateMonth } from './pdf.js';
import { BillingError, toMinor } from './money.js';
import type { SessionUsage } from './price.js';
import { capOf, type FundCarry, type Part } from './split.js';

export interface SessionRecord {
  sessionId: string;
  toolId: string;
  affiliateId: string;
  useType: string;
  startedAt: string;
  endedAt: string | null;
  durationS: number;
  activeS: number;
  filamentG: number;
  technicianMin?: number;
  /** Where the filament figure comes from (a print job's); absent: no print job. */
  material?: Material;
}

export type CorrectionChange =
  | { kind: 'void' }
  | { kind: 'use-type'; useType: string }
  /** `source: 'file'`: metered from the G-code file given after the print; absent: a person's figure. */
  | { kind: 'material'; filamentG: number; source?: 'file' }
  | { kind: 'technician'; technicianMin: number };

interface ChargeEventData {
  sessionId: string;
  affiliateId: string;
  useType: string;
  startedAt: string;
  endedAt: string | null;
  period: string;
  currency: string;
  inputs: ChargeInputs;
  price: Charge['price'];
  parts: Part[];
  material?: Material;
}

interface CorrectionEventData {
  corrects: number;
  sessionId: string;
  affiliateId: string;
  change: CorrectionChange;
  reason: string;
  by: string;
  period: string;
  after: { useType: string; inputs: ChargeInputs | null; price: Charge['price'] | null; parts: Part[] };
  /** Change of the cash parts. */
  delta: Part[];
  /** Change of the value of a use with no cash charge. */
  valueDelta: number;
}

/** The parts that are money owed: all of a cash charge's, none of a valued use's. */
const cashParts = (price: Charge['price'], parts: readonly Part[]): Part[] => (price.cash ? [...parts] : []);
const valueOf = (price: Charge['price']) => (price.cash ? 0 : price.total);

const month = (iso: string) => iso.slice(0, 7);
const nextMonth = (p: string) => {
  const [y, m] = p.split('-').map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
};

export class Billing {
  constructor(
    readonly cfg: BillingConfig,
    private readonly journal: Journal,
    /** The material of each tool's printer (config devices), for its price per gram. */
    private readonly printerMaterial: ReadonlyMap<string, string> = new Map(),
    /** The lab's use types, to refuse a correction to one that does not exist. */
    private readonly useTypes: readonly string[] | null = null,
    /** Where the config file is (a logo's path is relative to it) and the gateway's name, for statements and invoices. */
    readonly documents: { baseDir: string; gatewayName: string } = { baseDir: '.', gatewayName: 'ovn-gateway' },
  ) {}

  /**
   * An affiliate's month as a PDF: the invoice once the month is closed (with its number), the
   * statement while it is open. In the affiliate's language unless `language` says otherwise.
   */
  monthPdf(affiliateId: string, period: string, language?: Language): Promise<Buffer> {
    return affiliateMonthPdf(this.journal, this.cfg, affiliateId, period, { ...this.documents, ...(language && { language }) });
  }

  /** The journal's money, months `from`…`to`, as a Beancount file (beancount.ts: the account tree). */
  exportBeancount(q: ExportQuery = {}): string {
    return beancountExport(this.journal, this.cfg, q, this.cfg.documents?.labName ?? this.documents.gatewayName);
  }

  /** Records a payment (invoice.ts: a reference once per affiliate). */
  recordPayment(p: PaymentInput, now: Date): Payment {
    return recordPayment(this.journal, this.cfg, p, now);
  }

  payments(q: { affiliate?: string; from?: string; to?: string } = {}): Payment[] {
    return payments(this.journal, q);
  }

  /** Invoiced − paid, per affiliate. */
  balances(affiliate?: string): Balance[] {
    return balances(this.journal, affiliate);
  }

  invoices(q: { period?: string; affiliate?: string } = {}): Invoice[] {
    return invoices(this.journal, q);
  }

  /** Everything on that PDF, as data. */
  month(affiliateId: string, period: string, language?: Language): AffiliateMonth {
    return affiliateMonth(this.journal, this.cfg, affiliateId, period, { ...this.documents, ...(language && { language }) });
  }

  private get db() {
    return this.journal.db;
  }

  /** Charges a closed session; call inside the transaction that journals its end. */
  charge(s: SessionRecord): void {
    const toolCfg = this.cfg.tools[s.toolId];
    if (!toolCfg) return; // a tool without tariffs is not billed
    const inputs = this.inputsFor(s.toolId, s.useType, s.affiliateId, { durationS: s.durationS, activeS: s.activeS, filamentG: s.filamentG, technicianMin: s.technicianMin ?? 0, ownMaterial: false }, null);
    const charge = computeCharge(inputs);
    const period = this.openPeriodFrom(month(s.endedAt ?? new Date().toISOString()));
    const data: ChargeEventData = { sessionId: s.sessionId, affiliateId: s.affiliateId, useType: s.useType, startedAt: s.startedAt, endedAt: s.endedAt, period, currency: this.cfg.currency, inputs, price: charge.price, parts: charge.parts, ...(s.material && { material: s.material }) };
    const eventId = this.journal.record('billing.charge', s.toolId, { ...data });
    // Money owed lives in the parts; a use with no cash charge keeps its value beside them.
    this.project(eventId, 'charge', null, s.sessionId, s.toolId, s.affiliateId, s.useType, period, charge.price.cash, cashParts(charge.price, charge.parts), valueOf(charge.price));
    this.carry(s.toolId, carryAdded(inputs));
    if (charge.poolReached) this.pool(s.toolId, s.sessionId, eventId, inputs);
  }

  /** What a session would be charged if it ended now (a running session's cost); null when its tool is not billed. Writes nothing. */
  quote(s: SessionRecord): Charge | null {
    if (!this.cfg.tools[s.toolId]) return null;
    return computeCharge(this.inputsFor(s.toolId, s.useType, s.affiliateId, { durationS: s.durationS, activeS: s.activeS, filamentG: s.filamentG, technicianMin: s.technicianMin ?? 0, ownMaterial: false }, null));
  }

  /** The last co-owner is repaid: the tool joins the pool of shareables, journaled with the charge or correction (`chargeEventId`) that did it. */
  private pool(toolId: string, sessionId: string, eventId: number, inputs: ChargeInputs): void {
    const coOwners = inputs.coOwners.map((c) => ({ affiliateId: c.affiliateId, contribution: c.contribution, cap: capOf(c.contribution, inputs.multiplier) }));
    this.journal.record('tool.pooled', toolId, { sessionId, chargeEventId: eventId, multiplier: inputs.multiplier, coOwners });
  }

  /**
   * Everything a charge depends on now. `excludeSession`: a session whose own co-owner
   * payments are taken out of what the co-owners have received (a correction recomputes it).
   */
  private inputsFor(toolId: string, useType: string, payer: string, usage: SessionUsage, excludeSession: { id: string; pooled: boolean; carry: FundCarry } | null): ChargeInputs {
    const cfg = this.cfg;
    const toolCfg = cfg.tools[toolId]!;
    const tariff = toolCfg.tariffs[useType] ?? null;
    const material = toolCfg.material ?? this.printerMaterial.get(toolId);
    const agreement = toolCfg.coOwnership;
    const received = this.received(toolId, excludeSession?.id ?? null);
    const carry = this.fundCarry(toolId);
    const own = excludeSession?.carry ?? [0, 0, 0];
    return {
      usage,
      tariff: tariff && { hourlyRate: tariff.hourlyRate, billedTime: tariff.billedTime, incrementMin: tariff.incrementMin, minimumCharge: tariff.minimumCharge, chargeMaterial: tariff.chargeMaterial, cash: tariff.cash },
      shares: tariff?.split ?? { maintenance: 100, infrastructure: 0, payback: 0 },
      minorUnit: cfg.minorUnit,
      materialPricePerGram: material ? (cfg.materials[material]?.pricePerGram ?? cfg.materials[material.toUpperCase()]?.pricePerGram ?? null) : null,
      technicianRatePerHour: cfg.technicianRate,
      coOwners: (agreement?.coOwners ?? []).map((c) => ({ affiliateId: c.affiliate, contribution: toMinor(c.contribution, cfg.minorUnit, 'contribution'), received: received.get(c.affiliate) ?? 0 })),
      multiplier: agreement?.multiplier ?? '1.2',
      excessTo: agreement?.excessTo ?? 'funds',
      pooled: excludeSession?.pooled ?? this.isPooled(toolId),
      allocation: 2,
      fundCarry: [carry[0] - own[0], carry[1] - own[1], carry[2] - own[2]],
      payer,
      selfPayback: agreement?.selfPayback ?? 'allowed',
    };
  }

  /**
   * The remainders carried by the cumulative-fair split of a tool's usage fees (split.ts), in
   * hundredths of a minor unit: maintenance, infrastructure, payback. Kept with every charge and
   * correction, like the payback received.
   */
  fundCarry(toolId: string): FundCarry {
    const row = this.journal.prepared('SELECT maintenance, infrastructure, payback FROM split_carry WHERE tool_id = ?').get(toolId) as { maintenance: number; infrastructure: number; payback: number } | undefined;
    return row ? [row.maintenance, row.infrastructure, row.payback] : [0, 0, 0];
  }

  private carry(toolId: string, added: FundCarry): void {
    if (added[0] === 0 && added[1] === 0 && added[2] === 0) return;
    this.journal
      .prepared(
        `INSERT INTO split_carry (tool_id, maintenance, infrastructure, payback) VALUES (?, ?, ?, ?)
         ON CONFLICT (tool_id) DO UPDATE SET maintenance = maintenance + excluded.maintenance, infrastructure = infrastructure + excluded.infrastructure, payback = payback + excluded.payback`,
      )
      .run(toolId, added[0], added[1], added[2]);
  }

  isPooled(toolId: string): boolean {
    return this.journal.latest('tool.pooled', toolId) !== null;
  }

  /**
   * What each co-owner of a tool has been paid back, minor units, from the running totals
   * (a charge must not cost more as the journal grows); without one session's own payments
   * when a correction recomputes it.
   */
  received(toolId: string, excludeSession: string | null = null): Map<string, number> {
    const rows = this.journal.prepared('SELECT affiliate_id AS who, paid FROM payback_received WHERE tool_id = ?').all(toolId) as { who: string; paid: number }[];
    const received = new Map(rows.map((r) => [r.who, r.paid]));
    if (excludeSession !== null) {
      const own = this.journal
        .prepared(
          `SELECT p.co_owner AS who, SUM(p.amount) AS paid FROM charges c JOIN charge_parts p ON p.event_id = c.event_id
           WHERE c.session_id = ? AND c.tool_id = ? AND p.account = 'co-owner' GROUP BY p.co_owner`,
        )
        .all(excludeSession, toolId) as { who: string; paid: number }[];
      for (const o of own) received.set(o.who, (received.get(o.who) ?? 0) - o.paid);
    }
    return received;
  }

  private project(eventId: number, kind: 'charge' | 'correction', corrects: number | null, sessionId: string, toolId: string, affiliateId: string, useType: string, period: string, cash: boolean, parts: readonly Part[], value: number): void {
    const total = parts.reduce((a, p) => a + p.amount, 0);
    this.journal
      .prepared('INSERT INTO charges (event_id, kind, corrects, session_id, tool_id, affiliate_id, use_type, period, cash, total, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(eventId, kind, corrects, sessionId, toolId, affiliateId, useType, period, cash ? 1 : 0, total, value);
    const insert = this.journal.prepared('INSERT INTO charge_parts (event_id, account, co_owner, amount) VALUES (?, ?, ?, ?)');
    const paid = this.journal.prepared(`INSERT INTO payback_received (tool_id, affiliate_id, paid) VALUES (?, ?, ?)
      ON CONFLICT (tool_id, affiliate_id) DO UPDATE SET paid = paid + excluded.paid`);
    for (const p of parts) {
      if (p.amount === 0) continue;
      insert.run(eventId, p.account, p.affiliateId ?? null, p.amount);
      if (p.account === 'co-owner') paid.run(toolId, p.affiliateId!, p.amount);
    }
  }

  // ---- periods ----

  closedPeriods(): string[] {
    return this.journal.events({ kind: 'billing.period-closed', limit: Number.MAX_SAFE_INTEGER }).map((e) => e.data.period as string);
  }

  /** The first month from `period` on that is not closed. */
  private openPeriodFrom(period: string): string {
    const closed = new Set(this.closedPeriods());
    let p = period;
    while (closed.has(p)) p = nextMonth(p);
    return p;
  }

  /**
   * Closes a month that has ended at `now` (UTC): later corrections to its sessions land in the
   * next open month. A statement is final once its month is over, not while sessions can still
   * be charged to it. Every affiliate with money in the month gets its invoice number, in the
   * same transaction (invoice.ts); returns the invoices.
   */
  closePeriod(period: string, by: string, now: Date): Invoice[] {
    if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(period)) throw new BillingError(`a period is a month written YYYY-MM, not "${period}"`);
    if (period >= now.toISOString().slice(0, 7)) throw new BillingError(`${period} has not ended yet: a month can be closed from the first day of the next (UTC)`);
    return this.journal.durably(() => {
      if (this.closedPeriods().includes(period)) throw new BillingError(`${period} is already closed`);
      this.journal.record('billing.period-closed', null, { period, by });
      return numberInvoices(this.journal, this.cfg, period, now.toISOString());
    });
  }

  // ---- corrections ----

  /** A custodian's correction of a session's charge: a new event referencing the charge; nothing is edited. */
  correct(sessionId: string, change: CorrectionChange, reason: string, by: string): CorrectionEventData & { eventId: number } {
    if (!reason.trim()) throw new BillingError('a correction needs a reason');
    const rows = this.journal.prepared('SELECT event_id AS id, kind FROM charges WHERE session_id = ? ORDER BY event_id').all(sessionId) as { id: number; kind: string }[];
    const original = rows.find((r) => r.kind === 'charge');
    if (!original) throw new BillingError(`no charge for session ${sessionId}`);
    const events = this.journal.eventsByIds(rows.map((r) => r.id));
    const charge = events.get(original.id)!.data as unknown as ChargeEventData;
    const toolId = events.get(original.id)!.deviceId!;
    // What the session stands at now: its cash parts and value with every correction so far.
    let current: Part[] = cashParts(charge.price, charge.parts);
    let currentValue = valueOf(charge.price);
    let inputs: ChargeInputs | null = charge.inputs;
    let useType = charge.useType;
    for (const r of rows) {
      if (r.kind !== 'correction') continue;
      const c = events.get(r.id)!.data as unknown as CorrectionEventData;
      current = partsPlus(current, c.delta);
      currentValue += c.valueDelta;
      inputs = c.after.inputs;
      useType = c.after.useType;
    }
    if (change.kind === 'void' && inputs === null) throw new BillingError(`the charge of session ${sessionId} is already void`);
    if (change.kind === 'use-type' && this.useTypes && !this.useTypes.includes(change.useType)) {
      throw new BillingError(`unknown use type "${change.useType}" (this lab has ${this.useTypes.join(', ')})`);
    }
    if (inputs !== null) this.checkBounds(change, inputs);
    let after: CorrectionEventData['after'];
    let pools = false;
    if (change.kind === 'void') after = { useType, inputs: null, price: null, parts: [] };
    else {
      if (inputs === null) throw new BillingError(`the charge of session ${sessionId} is void; it cannot be adjusted`);
      const newUseType = change.kind === 'use-type' ? change.useType : useType;
      const usage: SessionUsage = {
        ...inputs.usage,
        ...(change.kind === 'material' ? { filamentG: change.filamentG } : {}),
        ...(change.kind === 'technician' ? { technicianMin: change.technicianMin } : {}),
      };
      const next = this.inputsFor(toolId, newUseType, charge.affiliateId, usage, { id: sessionId, pooled: charge.inputs.pooled, carry: carryAdded(inputs) });
      const result = computeCharge(next);
      after = { useType: newUseType, inputs: next, price: result.price, parts: result.parts };
      // A correction that repays the last co-owner pools the tool, as a charge does (once).
      pools = result.poolReached && !this.isPooled(toolId);
    }
    const delta = partsDelta(current, after.price ? cashParts(after.price, after.parts) : []);
    const valueDelta = (after.price ? valueOf(after.price) : 0) - currentValue;
    const period = this.openPeriodFrom(charge.period);
    const data: CorrectionEventData = { corrects: original.id, sessionId, affiliateId: charge.affiliateId, change, reason, by, period, after, delta, valueDelta };
    return this.journal.durably(() => {
      const eventId = this.journal.record('billing.correction', toolId, { ...data });
      this.project(eventId, 'correction', original.id, sessionId, toolId, charge.affiliateId, after.useType, period, after.price?.cash ?? charge.price.cash, delta, valueDelta);
      // The session's part of the carry is now the corrected charge's.
      const was = carryAdded(inputs);
      const now = carryAdded(after.inputs);
      this.carry(toolId, [now[0] - was[0], now[1] - was[1], now[2] - was[2]]);
      if (pools) this.pool(toolId, sessionId, eventId, after.inputs!);
      return { ...data, eventId };
    });
  }

  /**
   * A print metered again from its file after it ended: the one charged session at this tool that
   * held the whole job gets its grams corrected by the difference (a correction like a person's,
   * with who gave the file and why). Not when a person has set the session's grams already, nor
   * when the job was shared (a handover) or no charged session held it: the custodian decides then.
   */
  meterFromFile(toolId: string, job: JobMetered, by: string): { sessionId: string | null; correction: (CorrectionEventData & { eventId: number }) | null; skipped: string | null } {
    const held = this.journal
      .prepared(
        `SELECT c.session_id AS sessionId, json_extract(e.data, '$.startedAt') AS startedAt, json_extract(e.data, '$.endedAt') AS endedAt, json_extract(e.data, '$.inputs.usage.filamentG') AS filamentG
         FROM charges c JOIN events e ON e.id = c.event_id
         WHERE c.kind = 'charge' AND c.tool_id = ? AND json_extract(e.data, '$.startedAt') <= ? AND json_extract(e.data, '$.endedAt') >= ?`,
      )
      .all(toolId, job.endedAt, job.startedAt) as { sessionId: string; startedAt: string; endedAt: string; filamentG: number | null }[];
    const skip = (sessionId: string | null, skipped: string) => ({ sessionId, correction: null, skipped });
    if (held.length === 0) return skip(null, `no charged session at ${toolId} held the print of ${job.file}`);
    if (held.length > 1) return skip(null, `the print of ${job.file} was shared by ${held.length} sessions: correct each one's grams`);
    const s = held[0]!;
    if (s.startedAt > job.startedAt || s.endedAt < job.endedAt) return skip(s.sessionId, `session ${s.sessionId} held only part of the print of ${job.file}: correct its grams`);
    const corrections = this.journal.prepared("SELECT e.data FROM charges c JOIN events e ON e.id = c.event_id WHERE c.session_id = ? AND c.kind = 'correction'").pluck().all(s.sessionId) as string[];
    const material = corrections.map((d) => (JSON.parse(d) as CorrectionEventData).change).find((c) => c.kind === 'material');
    if (material) return skip(s.sessionId, `the grams of session ${s.sessionId} were ${material.source === 'file' ? 'metered from the file' : 'corrected by a person'} already`);
    const filamentG = Math.max(0, Math.round(((s.filamentG ?? 0) + job.filamentG - job.before.filamentG) * 1000) / 1000);
    return { sessionId: s.sessionId, correction: this.correct(s.sessionId, { kind: 'material', filamentG, source: 'file' }, 'metered from the attached file', by), skipped: null };
  }

  /** The configured bounds on a correction's technician time and filament. */
  private checkBounds(change: CorrectionChange, inputs: ChargeInputs): void {
    const bounds = this.cfg.corrections;
    if (change.kind === 'material' && change.filamentG > bounds.maxFilamentG) {
      throw new BillingError(`filamentG: ${change.filamentG} g is more than the ${bounds.maxFilamentG} g a correction may set (billing.corrections.maxFilamentG)`);
    }
    if (change.kind === 'technician') {
      const inc = inputs.tariff?.incrementMin ?? 1;
      const sessionMin = Math.max(1, Math.ceil(inputs.usage.durationS / 60 / inc)) * inc;
      const most = sessionMin * bounds.maxTechnicianFactor;
      if (change.technicianMin > most) {
        throw new BillingError(`technicianMin: ${change.technicianMin} min is more than ${bounds.maxTechnicianFactor} × the session's ${sessionMin} min (billing.corrections.maxTechnicianFactor): at most ${most} min`);
      }
    }
  }

  // ---- reading ----

  /** Each co-owner's contribution, cap, what they were paid and what remains, per tool with an agreement. */
  payback(): PaybackProgress[] {
    return Object.entries(this.cfg.tools)
      .filter(([, t]) => t.coOwnership)
      .map(([toolId, t]) => {
        const agreement = t.coOwnership!;
        const received = this.received(toolId);
        const coOwners = agreement.coOwners.map((c) => {
          const contribution = toMinor(c.contribution, this.cfg.minorUnit, 'contribution');
          const cap = capOf(contribution, agreement.multiplier);
          const paid = received.get(c.affiliate) ?? 0;
          return { affiliateId: c.affiliate, contribution, cap, paid, remaining: Math.max(0, cap - paid) };
        });
        const remaining = coOwners.reduce((a, c) => a + c.remaining, 0);
        // The average payback of the cash sessions charged so far says how many more it takes.
        const avg = this.journal
          .prepared(
            `SELECT AVG(paid) FROM (SELECT SUM(p.amount) AS paid FROM charges c JOIN charge_parts p ON p.event_id = c.event_id
             WHERE c.tool_id = ? AND c.kind = 'charge' AND c.cash = 1 AND p.account = 'co-owner' GROUP BY c.event_id)`,
          )
          .pluck()
          .get(toolId) as number | null;
        return {
          toolId,
          pooled: this.isPooled(toolId),
          multiplier: agreement.multiplier,
          coOwners,
          paid: coOwners.reduce((a, c) => a + c.paid, 0),
          cap: coOwners.reduce((a, c) => a + c.cap, 0),
          remaining,
          estimatedSessionsToPool: remaining === 0 ? 0 : avg ? Math.ceil(remaining / avg) : null,
        };
      });
  }
}

export interface PaybackProgress {
  toolId: string;
  pooled: boolean;
  multiplier: string;
  coOwners: { affiliateId: string; contribution: number; cap: number; paid: number; remaining: number }[];
  paid: number;
  cap: number;
  remaining: number;
  /** At the average payback of the sessions charged so far; null before the first. */
  estimatedSessionsToPool: number | null;
}

/** The material of each tool's printer, for its price per gram. */
export function printerMaterials(cfg: { tools: readonly { id: string; printer?: string | undefined }[]; devices: readonly ({ id: string; kind: string } & { filament?: { material: string } })[] }): Map<string, string> {
  const materials = new Map<string, string>();
  for (const t of cfg.tools) {
    const material = cfg.devices.find((d) => d.id === t.printer)?.filament?.material;
    if (material) materials.set(t.id, material);
  }
  return materials;
}

export interface ChargeMismatch {
  eventId: number;
  kind: string;
  sessionId: string;
  problem: string;
}

/**
 * Recomputes every charge and correction from the inputs its event kept, and checks the
 * statements' projection against the events: the same inputs must always give the same cents.
 */
export function verifyCharges(journal: Journal): { checked: number; mismatches: ChargeMismatch[] } {
  const mismatches: ChargeMismatch[] = [];
  const projected = new Map(
    (journal.db.prepare('SELECT c.event_id AS id, c.total, c.value, (SELECT COALESCE(SUM(amount), 0) FROM charge_parts p WHERE p.event_id = c.event_id) AS parts FROM charges c').all() as { id: number; total: number; value: number; parts: number }[]).map((r) => [r.id, r]),
  );
  let checked = 0;
  for (const e of journal.events({ kinds: ['billing.charge', 'billing.correction'], limit: Number.MAX_SAFE_INTEGER })) {
    checked++;
    const fail = (problem: string) => mismatches.push({ eventId: e.id, kind: e.kind, sessionId: e.data.sessionId as string, problem });
    const charge = e.kind === 'billing.charge';
    const after = e.data.after as CorrectionEventData['after'];
    const [inputs, price, parts] = charge ? [e.data.inputs as ChargeInputs, e.data.price as Charge['price'], e.data.parts as Part[]] : [after.inputs, after.price, after.parts];
    const stored = charge ? cashParts(price!, parts) : (e.data.delta as Part[]);
    if (inputs) {
      const again = computeCharge(inputs);
      if (JSON.stringify(again.price) !== JSON.stringify(price) || JSON.stringify(again.parts) !== JSON.stringify(parts)) fail('recomputed from its inputs, the charge differs from the one stored');
    }
    const row = projected.get(e.id);
    const sum = stored.reduce((a, p) => a + p.amount, 0);
    if (!row) fail('missing from the statements (charges table)');
    else if (row.total !== sum || row.parts !== sum) fail(`the statements show ${row.parts}, the event ${sum}`);
    else if (row.value !== (charge ? valueOf(price!) : (e.data.valueDelta as number))) fail(`the statements show a value of ${row.value}, the event another`);
  }
  // The fund carry of each tool is what its sessions' latest charges added to it.
  const carries = new Map<string, FundCarry>();
  const sessionCarry = new Map<string, FundCarry>();
  for (const e of journal.events({ kinds: ['billing.charge', 'billing.correction'], limit: Number.MAX_SAFE_INTEGER })) {
    const inputs = e.kind === 'billing.charge' ? (e.data.inputs as ChargeInputs) : (e.data.after as CorrectionEventData['after']).inputs;
    const key = `${e.deviceId}\u0000${String(e.data.sessionId)}`;
    const was = sessionCarry.get(key) ?? [0, 0, 0];
    const now = carryAdded(inputs);
    sessionCarry.set(key, now);
    const t = carries.get(e.deviceId!) ?? [0, 0, 0];
    carries.set(e.deviceId!, [t[0] + now[0] - was[0], t[1] + now[1] - was[1], t[2] + now[2] - was[2]]);
  }
  const stored = new Map((journal.db.prepare('SELECT tool_id AS toolId, maintenance, infrastructure, payback FROM split_carry').all() as { toolId: string; maintenance: number; infrastructure: number; payback: number }[]).map((r) => [r.toolId, [r.maintenance, r.infrastructure, r.payback]]));
  for (const toolId of new Set([...carries.keys(), ...stored.keys()])) {
    const want = carries.get(toolId) ?? [0, 0, 0];
    const have = stored.get(toolId) ?? [0, 0, 0];
    if (want.some((v, i) => v !== have[i])) mismatches.push({ eventId: 0, kind: 'split_carry', sessionId: '', problem: `${toolId}: the fund carry says ${have.join(' ')}, the charges ${want.join(' ')}` });
  }
  // The running payback totals agree with the parts they add up.
  const drift = journal.db
    .prepare(
      `SELECT t.tool_id AS toolId, t.affiliate_id AS who, t.paid, COALESCE(SUM(p.amount), 0) AS parts
       FROM payback_received t LEFT JOIN charges c ON c.tool_id = t.tool_id LEFT JOIN charge_parts p ON p.event_id = c.event_id AND p.account = 'co-owner' AND p.co_owner = t.affiliate_id
       GROUP BY t.tool_id, t.affiliate_id HAVING t.paid != COALESCE(SUM(p.amount), 0)`,
    )
    .all() as { toolId: string; who: string; paid: number; parts: number }[];
  for (const d of drift) mismatches.push({ eventId: 0, kind: 'payback_received', sessionId: '', problem: `${d.who} at ${d.toolId}: the running total says ${d.paid}, the parts ${d.parts}` });
  // Invoice numbers run without gaps through each year, each as its billing.invoice event says.
  const numbered = journal.db.prepare('SELECT i.year, i.seq, i.number, i.total, i.event_id AS eventId, e.data FROM invoices i LEFT JOIN events e ON e.id = i.event_id ORDER BY i.year, i.seq').all() as { year: number; seq: number; number: string; total: number; eventId: number; data: string | null }[];
  let year = 0;
  let expected = 1;
  for (const i of numbered) {
    if (i.year !== year) [year, expected] = [i.year, 1];
    const fail = (problem: string) => mismatches.push({ eventId: i.eventId, kind: 'billing.invoice', sessionId: '', problem });
    if (i.seq !== expected) fail(`invoice ${i.number}: number ${i.seq} of ${i.year} where ${expected} was next (a gap)`);
    expected = i.seq + 1;
    const e = i.data ? (JSON.parse(i.data) as { number?: string; total?: number }) : null;
    if (!e || e.number !== i.number || e.total !== i.total) fail(`invoice ${i.number}: the invoices table and its event disagree`);
  }
  return { checked, mismatches };
}
