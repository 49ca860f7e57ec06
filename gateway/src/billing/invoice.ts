/**
 * Invoices and payments. When a month is closed, every affiliate with money in it gets an
 * invoice number: the prefix, the month's year and a sequence that runs without gaps through
 * the year (2026-0001, 2026-0002…), journaled as a `billing.invoice` event with its subtotal,
 * taxes and total, in the same transaction as the close. Numbers are never reused: nothing
 * deletes an invoice, and the next number is always one more than the year's highest.
 *
 * Taxes (billing.taxes) are each computed on the invoice's pre-tax amount of the use types the
 * tax applies to, and rounded half up (away from zero for a credit) once per invoice, not per
 * session: GST 5 % and QST 9.975 % of 100.10 are 5.01 and 9.99.
 *
 * Payments are recorded by the custodian (date, amount, method, reference) as `billing.payment`
 * events; a reference is taken once per affiliate, so a payment typed in twice is refused.
 * An affiliate's balance is what was invoiced less what was paid.
 */
import { formatMinor } from '../../../ledger-client/src/money.js';
import type { Journal } from '../journal/journal.js';
import type { BillingConfig, TaxConfig } from './config.js';
import { BillingError, parseDecimal, roundHalfUp, toMinor } from './money.js';
import { statement, type Statement } from './statement.js';

export interface TaxLine {
  id: string;
  name: string;
  /** Percentage, as configured ("9.975"). */
  rate: string;
  registration: string | null;
  /** The pre-tax amount it applies to, minor units. */
  base: number;
  amount: number;
}

export interface Invoice {
  number: string;
  year: number;
  seq: number;
  affiliateId: string;
  period: string;
  eventId: number;
  /** When it was numbered (the month's close), ISO 8601. */
  issuedAt: string;
  currency: string;
  subtotal: number;
  taxes: TaxLine[];
  tax: number;
  total: number;
}

export const PAYMENT_METHODS = ['cash', 'cheque', 'transfer', 'card', 'other'] as const;
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];

export interface Payment {
  eventId: number;
  affiliateId: string;
  /** YYYY-MM-DD */
  paidOn: string;
  amount: number;
  method: PaymentMethod;
  reference: string;
  by: string;
  recordedAt: string;
}

export interface Balance {
  affiliateId: string;
  invoiced: number;
  paid: number;
  /** invoiced − paid: what the affiliate owes (negative: paid ahead). */
  balance: number;
}

/** A payment whose reference this affiliate's payments already have: typed in twice, most likely. */
export class DuplicatePaymentError extends BillingError {
  override name = 'DuplicatePaymentError';
}

const isTaxed = (t: TaxConfig, useType: string) => !t.exemptUseTypes.includes(useType);

/**
 * The taxes of one affiliate's month (a statement of one affiliate). A correction that moves a
 * session between a taxed and an exempt use type moves the session's whole amount in or out of
 * the tax's base, so a credit is taxed as the charge it reverses was.
 */
export function taxesOf(journal: Journal, st: Statement, taxes: readonly TaxConfig[]): TaxLine[] {
  if (taxes.length === 0) return [];
  const before = journal.prepared('SELECT COALESCE(SUM(total), 0) AS total, (SELECT use_type FROM charges WHERE session_id = ? AND event_id < ? ORDER BY event_id DESC LIMIT 1) AS useType FROM charges WHERE session_id = ? AND event_id < ?');
  return taxes.map((t) => {
    let base = 0;
    for (const s of st.sessions) {
      for (const e of s.entries) {
        if (e.kind === 'charge') {
          if (isTaxed(t, e.useType)) base += e.items.total;
          continue;
        }
        const prev = before.get(s.sessionId, e.eventId, s.sessionId, e.eventId) as { total: number; useType: string | null };
        const wasTaxed = prev.useType !== null && isTaxed(t, prev.useType);
        const taxed = isTaxed(t, e.useType);
        base += (taxed ? prev.total + e.items.total : 0) - (wasTaxed ? prev.total : 0);
      }
    }
    const rate = parseDecimal(t.rate, `taxes.${t.id}.rate`);
    const amount = Number(roundHalfUp(BigInt(base) * rate.units, 100n * 10n ** BigInt(rate.scale)));
    return { id: t.id, name: t.name, rate: t.rate, registration: t.registration ?? null, base, amount };
  });
}

const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

export function checkMonth(period: string): void {
  if (!MONTH.test(period)) throw new BillingError(`a month is written YYYY-MM, not "${period}"`);
}

/** Affiliates with money in a month: a cash charge, or a correction that changes what they owe. */
export function affiliatesWithMoney(journal: Journal, period: string): string[] {
  return journal.prepared('SELECT DISTINCT affiliate_id FROM charges WHERE period = ? AND (cash = 1 OR total != 0) ORDER BY affiliate_id').pluck().all(period) as string[];
}

/**
 * Numbers the invoices of a month being closed; call inside the transaction that journals the
 * close. Affiliates in id order, each the year's next number.
 */
export function numberInvoices(journal: Journal, cfg: BillingConfig, period: string, issuedAt: string): Invoice[] {
  const year = Number(period.slice(0, 4));
  const prefix = cfg.documents?.invoicePrefix ?? '';
  const next = journal.prepared('SELECT COALESCE(MAX(seq), 0) + 1 FROM invoices WHERE year = ?').pluck();
  const insert = journal.prepared('INSERT INTO invoices (number, year, seq, affiliate_id, period, event_id, subtotal, tax, total) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  return affiliatesWithMoney(journal, period).map((affiliateId) => {
    const st = statement(journal, { from: period, to: period, affiliate: affiliateId });
    const taxes = taxesOf(journal, st, cfg.taxes);
    const subtotal = st.funds.total;
    const tax = taxes.reduce((a, t) => a + t.amount, 0);
    const seq = next.get(year) as number;
    const number = `${prefix}${year}-${String(seq).padStart(4, '0')}`;
    const data = { number, year, seq, affiliateId, period, issuedAt, currency: cfg.currency, subtotal, taxes, tax, total: subtotal + tax };
    const eventId = journal.record('billing.invoice', null, data);
    insert.run(number, year, seq, affiliateId, period, eventId, subtotal, tax, subtotal + tax);
    return { ...data, eventId };
  });
}

type InvoiceRow = { eventId: number; data: string };
const invoiceOfRow = (r: InvoiceRow): Invoice => ({ ...(JSON.parse(r.data) as Omit<Invoice, 'eventId'>), eventId: r.eventId });

/** The invoice of an affiliate's month, or null (the month is open, or they had nothing to pay). */
export function invoiceFor(journal: Journal, affiliateId: string, period: string): Invoice | null {
  const r = journal.prepared('SELECT i.event_id AS eventId, e.data FROM invoices i JOIN events e ON e.id = i.event_id WHERE i.affiliate_id = ? AND i.period = ?').get(affiliateId, period) as InvoiceRow | undefined;
  return r ? invoiceOfRow(r) : null;
}

/** Invoices in number order; of one month, of one affiliate, or all. */
export function invoices(journal: Journal, q: { period?: string; affiliate?: string } = {}): Invoice[] {
  const rows = journal
    .prepared('SELECT i.event_id AS eventId, e.data FROM invoices i JOIN events e ON e.id = i.event_id WHERE (@period IS NULL OR i.period = @period) AND (@affiliate IS NULL OR i.affiliate_id = @affiliate) ORDER BY i.year, i.seq')
    .all({ period: q.period ?? null, affiliate: q.affiliate ?? null }) as InvoiceRow[];
  return rows.map(invoiceOfRow);
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

export interface PaymentInput {
  affiliateId: string;
  paidOn: string;
  /** Decimal text in the currency, e.g. "42.50". */
  amount: string;
  method: string;
  reference: string;
  by: string;
}

/** Records a payment; refuses one whose reference this affiliate's payments already have, naming it. */
export function recordPayment(journal: Journal, cfg: BillingConfig, p: PaymentInput, now: Date): Payment {
  if (!DATE.test(p.paidOn) || Number.isNaN(Date.parse(`${p.paidOn}T00:00:00Z`)) || new Date(`${p.paidOn}T00:00:00Z`).toISOString().slice(0, 10) !== p.paidOn) {
    throw new BillingError(`date: a day written YYYY-MM-DD, not "${p.paidOn}"`);
  }
  if (p.paidOn > now.toISOString().slice(0, 10)) throw new BillingError(`date: ${p.paidOn} is in the future; record a payment once it is received`);
  const amount = toMinor(p.amount, cfg.minorUnit, 'amount');
  if (amount <= 0) throw new BillingError(`amount: a payment is more than 0, not "${p.amount}"`);
  if (!(PAYMENT_METHODS as readonly string[]).includes(p.method)) throw new BillingError(`method: one of ${PAYMENT_METHODS.join(', ')}, not "${p.method}"`);
  const reference = p.reference.trim();
  if (!reference) throw new BillingError('reference: say which payment this is (cheque number, transfer reference, receipt number)');
  const known = journal.prepared('SELECT 1 FROM affiliates WHERE id = ?').get(p.affiliateId);
  if (!known) throw new BillingError(`affiliate: no affiliate "${p.affiliateId}"`);
  return journal.durably(() => {
    const twice = journal.prepared('SELECT event_id AS eventId, paid_on AS paidOn, amount, method FROM payments WHERE affiliate_id = ? AND reference = ?').get(p.affiliateId, reference) as
      | { eventId: number; paidOn: string; amount: number; method: string }
      | undefined;
    if (twice) {
      throw new DuplicatePaymentError(
        `reference: payment "${reference}" of ${p.affiliateId} is already recorded (event ${twice.eventId}: ${formatAmount(twice.amount, cfg)} by ${twice.method} on ${twice.paidOn}); a second payment needs its own reference`,
      );
    }
    const data = { affiliateId: p.affiliateId, paidOn: p.paidOn, amount, currency: cfg.currency, method: p.method as PaymentMethod, reference, by: p.by };
    const eventId = journal.record('billing.payment', null, data);
    journal.prepared('INSERT INTO payments (event_id, affiliate_id, paid_on, amount, method, reference) VALUES (?, ?, ?, ?, ?, ?)').run(eventId, p.affiliateId, p.paidOn, amount, p.method, reference);
    return { eventId, affiliateId: p.affiliateId, paidOn: p.paidOn, amount, method: data.method, reference, by: p.by, recordedAt: now.toISOString() };
  });
}

const formatAmount = (minor: number, cfg: BillingConfig) => `${formatMinor(minor, cfg.minorUnit)} ${cfg.currency}`;

/** Payments in date order (then as recorded); of one affiliate, between two days (inclusive), or all. */
export function payments(journal: Journal, q: { affiliate?: string; from?: string; to?: string } = {}): Payment[] {
  const rows = journal
    .prepared(
      `SELECT p.event_id AS eventId, p.affiliate_id AS affiliateId, p.paid_on AS paidOn, p.amount, p.method, p.reference, json_extract(e.data, '$.by') AS by, e.at AS recordedAt
       FROM payments p JOIN events e ON e.id = p.event_id
       WHERE (@affiliate IS NULL OR p.affiliate_id = @affiliate) AND (@from IS NULL OR p.paid_on >= @from) AND (@to IS NULL OR p.paid_on <= @to) ORDER BY p.paid_on, p.event_id`,
    )
    .all({ affiliate: q.affiliate ?? null, from: q.from ?? null, to: q.to ?? null }) as Payment[];
  return rows;
}

/** Each affiliate's balance (invoiced − paid), of every affiliate with an invoice or a payment, or of one. */
export function balances(journal: Journal, affiliate?: string): Balance[] {
  const rows = journal
    .prepared(
      `SELECT a AS affiliateId, SUM(invoiced) AS invoiced, SUM(paid) AS paid FROM (
         SELECT affiliate_id AS a, total AS invoiced, 0 AS paid FROM invoices
         UNION ALL SELECT affiliate_id, 0, amount FROM payments
       ) WHERE (@affiliate IS NULL OR a = @affiliate) GROUP BY a ORDER BY a`,
    )
    .all({ affiliate: affiliate ?? null }) as { affiliateId: string; invoiced: number; paid: number }[];
  const out = rows.map((r) => ({ ...r, balance: r.invoiced - r.paid }));
  if (affiliate !== undefined && out.length === 0) return [{ affiliateId: affiliate, invoiced: 0, paid: 0, balance: 0 }];
  return out;
}

/**
 * Where an affiliate's account stood around a month: the balance before it (invoices of earlier
 * months less payments dated before it), the month's invoice, the payments dated in it, and after.
 */
export function accountFor(journal: Journal, affiliateId: string, period: string, invoice: Invoice | null): { opening: number; invoiced: number; payments: Payment[]; paid: number; closing: number } {
  const invoicedBefore = journal.prepared('SELECT COALESCE(SUM(total), 0) FROM invoices WHERE affiliate_id = ? AND period < ?').pluck().get(affiliateId, period) as number;
  const paidBefore = journal.prepared('SELECT COALESCE(SUM(amount), 0) FROM payments WHERE affiliate_id = ? AND paid_on < ?').pluck().get(affiliateId, `${period}-01`) as number;
  const inMonth = payments(journal, { affiliate: affiliateId, from: `${period}-01`, to: `${period}-31` });
  const paid = inMonth.reduce((a, p) => a + p.amount, 0);
  const opening = invoicedBefore - paidBefore;
  const invoiced = invoice?.total ?? 0;
  return { opening, invoiced, payments: inMonth, paid, closing: opening + invoiced - paid };
}
