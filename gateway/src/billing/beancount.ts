/**
 * The journal's money as a Beancount file (double entry, checked by `bean-check`): every charge,
 * correction, invoice (with its taxes) and payment is a transaction whose postings sum to zero
 * to the minor unit, so an independent tool can verify what the statements and balances say.
 *
 * The account tree (components made from the ids; an `open` directive names the id it stands for):
 *
 *   Assets:Unbilled:<Affiliate>        charged in a month not invoiced yet (open months)
 *   Assets:Receivable:<Affiliate>      invoiced and not paid: the affiliate's balance
 *   Assets:Cash                        payments received (the method in each one's metadata)
 *   Income:Material, Income:Technician
 *   Income:Maintenance:<Tool>          each tool's maintenance fund
 *   Income:Infrastructure              the general fund
 *   Liabilities:Payback:<Affiliate>    owed to a co-owner: their payback
 *   Liabilities:Tax:<TAX>              taxes collected on invoices
 *
 * A charge moves its total into the affiliate's Unbilled account, split over the funds exactly as
 * its parts were stored (the Unbilled posting is the sum of the others, so it balances to the
 * cent); a correction does the same with its change. Closing a month turns it into an invoice:
 * the month's subtotal leaves Unbilled, the total with taxes enters Receivable. A payment moves
 * money from Receivable to Cash. Uses with no cash charge move no money and have no transaction.
 *
 * Dates: a charge on the day its session ended, a correction on the day it was recorded, each
 * kept inside the month it counts in (so a month in Beancount is the month of the statements);
 * an invoice on the day it was issued, a payment on the day it was paid. Months --from…--to pick
 * charges and corrections by the month they count in, invoices by their month, payments by their
 * day; what came before `from` is carried in as one opening transaction the day before.
 */
import { createHash } from 'node:crypto';
import { formatMinor } from '../../../ledger-client/src/money.js';
import type { Journal } from '../journal/journal.js';
import type { BillingConfig } from './config.js';
import { invoices, payments } from './invoice.js';
import { BillingError } from './money.js';

export interface ExportQuery {
  /** First month, YYYY-MM; earlier money is carried in as opening balances. */
  from?: string;
  /** Last month, YYYY-MM, inclusive. */
  to?: string;
}

export interface Posting {
  account: string;
  /** Minor units. */
  amount: number;
}

export interface MoneyTransaction {
  /** YYYY-MM-DD */
  date: string;
  /** The month the entry counts in, YYYY-MM (a payment: the month it was paid in). */
  period: string;
  payee: string;
  narration: string;
  /** In the order written; strings are quoted, numbers written as they are. */
  meta: [string, string | number][];
  postings: Posting[];
  /** For a stable order within a day. */
  eventId: number;
}

export interface AccountInfo {
  /** What the account is of, written on its `open` directive (e.g. ["affiliate", "ada"]). */
  meta: [string, string][];
}

export interface MoneyBook {
  currency: string;
  minorUnit: number;
  title: string;
  transactions: MoneyTransaction[];
  accounts: Map<string, AccountInfo>;
}

const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

/** The last day of a month, YYYY-MM-DD. */
const lastDay = (period: string) => {
  const [y, m] = period.split('-').map(Number) as [number, number];
  return new Date(Date.UTC(y, m, 0)).toISOString().slice(0, 10);
};
const dayBefore = (day: string) => new Date(Date.parse(`${day}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
/** A day kept inside its period: a charge that ended in a closed month counts (and is dated) in the next open one. */
const within = (day: string, period: string) => (day < `${period}-01` ? `${period}-01` : day > lastDay(period) ? lastDay(period) : day);

/**
 * An id as an account name's component: letters without their accents, digits and dashes,
 * starting with a capital or a digit ("ada" → "Ada", "3d printer" → "3d-printer").
 */
export function accountComponent(id: string): string {
  const ascii = id.normalize('NFD').replace(/[\u0300-\u036f]/g, '');
  let c = ascii.replace(/[^A-Za-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  if (!c) c = 'X';
  if (!/^[A-Za-z0-9]/.test(c)) c = `X${c}`;
  return c[0]!.toUpperCase() + c.slice(1);
}

/**
 * Components for a set of ids: where two ids give the same component ("ada" and "Ada", "a b" and
 * "a-b"), each of them gets a short hash of its id, so no two ids ever share an account.
 */
export function componentsFor(ids: Iterable<string>): Map<string, string> {
  const groups = new Map<string, string[]>();
  for (const id of new Set(ids)) {
    const c = accountComponent(id);
    const key = c.toLowerCase();
    groups.set(key, [...(groups.get(key) ?? []), id]);
  }
  const out = new Map<string, string>();
  for (const members of groups.values()) {
    for (const id of members) {
      out.set(id, members.length === 1 ? accountComponent(id) : `${accountComponent(id)}-${createHash('sha256').update(id).digest('hex').slice(0, 6)}`);
    }
  }
  return out;
}

interface ChargeRow {
  eventId: number;
  kind: 'charge' | 'correction';
  corrects: number | null;
  sessionId: string;
  toolId: string;
  affiliateId: string;
  useType: string;
  period: string;
  cash: number;
  at: string;
  endedAt: string | null;
  reason: string | null;
  by: string | null;
}

/**
 * The money movements of months `from`…`to` (all when absent), read from the journal, as
 * balanced transactions; what came before `from` summed per account in SQL into one opening
 * transaction the day before it (a sum of balanced transactions balances too).
 */
export function moneyBook(journal: Journal, cfg: BillingConfig, opts: { from?: string; to?: string; title: string }): MoneyBook {
  const from = opts.from ?? '0000-01';
  const to = opts.to ?? '9999-12';
  const rows = journal
    .prepared(
      `SELECT c.event_id AS eventId, c.kind, c.corrects, c.session_id AS sessionId, c.tool_id AS toolId, c.affiliate_id AS affiliateId, c.use_type AS useType,
              c.period, c.cash, e.at, json_extract(e.data, '$.endedAt') AS endedAt, json_extract(e.data, '$.reason') AS reason, json_extract(e.data, '$.by') AS by
       FROM charges c JOIN events e ON e.id = c.event_id WHERE c.period BETWEEN ? AND ? ORDER BY c.event_id`,
    )
    .all(from, to) as ChargeRow[];
  const parts = new Map<number, { account: string; coOwner: string | null; amount: number }[]>();
  for (const p of journal
    // Through the index on the parts' event (in the order stored within each), not a scan of every part in rowid order.
    .prepared(`SELECT p.event_id AS eventId, p.account, p.co_owner AS coOwner, p.amount FROM charge_parts p WHERE p.event_id IN (SELECT c.event_id FROM charges c WHERE c.period BETWEEN ? AND ?) ORDER BY p.event_id, p.rowid`)
    .all(from, to) as { eventId: number; account: string; coOwner: string | null; amount: number }[]) {
    const list = parts.get(p.eventId) ?? [];
    list.push(p);
    parts.set(p.eventId, list);
  }
  const allInvoices = invoices(journal).filter((i) => i.period <= to);
  const invoiced = allInvoices.filter((i) => i.period >= from);
  const paid = payments(journal, { from: `${from}-01`, to: lastDay(to) });
  // Before `from`: the parts per affiliate, tool and account, the invoices and the payments, summed.
  const before = opts.from === undefined ? null : {
    parts: journal
      .prepared(
        `SELECT c.affiliate_id AS affiliateId, c.tool_id AS toolId, p.account, p.co_owner AS coOwner, SUM(p.amount) AS amount
         FROM charges c JOIN charge_parts p ON p.event_id = c.event_id WHERE c.period < ? GROUP BY c.affiliate_id, c.tool_id, p.account, p.co_owner`,
      )
      .all(from) as { affiliateId: string; toolId: string; account: string; coOwner: string | null; amount: number }[],
    invoices: allInvoices.filter((i) => i.period < from),
    paid: journal.prepared('SELECT affiliate_id AS affiliateId, SUM(amount) AS amount FROM payments WHERE paid_on < ? GROUP BY affiliate_id').all(`${from}-01`) as { affiliateId: string; amount: number }[],
  };
  const names = new Map(journal.prepared('SELECT id, name FROM affiliates').all().map((r) => [(r as { id: string }).id, (r as { name: string }).name] as const));

  // Names from every id known (not only this export's), so a range's accounts are those of the whole export.
  const affiliates = componentsFor([
    ...names.keys(),
    ...rows.map((r) => r.affiliateId),
    ...allInvoices.map((i) => i.affiliateId),
    ...paid.map((p) => p.affiliateId),
    ...[...parts.values()].flat().flatMap((p) => (p.coOwner ? [p.coOwner] : [])),
    ...(before?.parts.flatMap((p) => [p.affiliateId, ...(p.coOwner ? [p.coOwner] : [])]) ?? []),
    ...(before?.paid.map((p) => p.affiliateId) ?? []),
  ]);
  const tools = componentsFor([...Object.keys(cfg.tools), ...rows.map((r) => r.toolId), ...(before?.parts.map((p) => p.toolId) ?? [])]);
  const taxes = componentsFor([...cfg.taxes.map((t) => t.id), ...allInvoices.flatMap((i) => i.taxes.map((t) => t.id))]);
  const accounts = new Map<string, AccountInfo>();
  const account = (name: string, meta: [string, string][] = []) => {
    if (!accounts.has(name)) accounts.set(name, { meta });
    return name;
  };
  const unbilled = (a: string) => account(`Assets:Unbilled:${affiliates.get(a)!}`, [['affiliate', a]]);
  const receivable = (a: string) => account(`Assets:Receivable:${affiliates.get(a)!}`, [['affiliate', a]]);
  const partAccount = (p: { account: string; coOwner: string | null }, toolId: string): string => {
    switch (p.account) {
      case 'material':
        return account('Income:Material');
      case 'technician':
        return account('Income:Technician');
      case 'maintenance':
        return account(`Income:Maintenance:${tools.get(toolId)!}`, [['tool', toolId]]);
      case 'infrastructure':
        return account('Income:Infrastructure');
      case 'co-owner':
        return account(`Liabilities:Payback:${affiliates.get(p.coOwner!)!}`, [['co-owner', p.coOwner!]]);
      default:
        throw new BillingError(`charge part "${p.account}" has no account in the export`);
    }
  };
  const taxAccount = (id: string) => account(`Liabilities:Tax:${taxes.get(id)!.toUpperCase()}`, [['tax', id]]);
  const payee = (a: string) => names.get(a) ?? a;

  const transactions: MoneyTransaction[] = [];
  for (const r of rows) {
    const own = (parts.get(r.eventId) ?? []).filter((p) => p.amount !== 0);
    if (own.length === 0) continue; // no money moved: a use with no cash charge, or a correction that changed nothing owed
    const postings = own.map((p) => ({ account: partAccount(p, r.toolId), amount: -p.amount }));
    postings.unshift({ account: unbilled(r.affiliateId), amount: own.reduce((a, p) => a + p.amount, 0) });
    const charge = r.kind === 'charge';
    const day = within(((charge ? r.endedAt : null) ?? r.at).slice(0, 10), r.period);
    transactions.push({
      date: day,
      period: r.period,
      payee: payee(r.affiliateId),
      narration: charge ? `${r.toolId}, ${r.useType}` : `correction: ${r.reason ?? ''}`,
      meta: [
        ['session', r.sessionId],
        ['event', r.eventId],
        ...(charge ? [] : ([['corrects', r.corrects!], ['by', r.by ?? '']] as [string, string | number][])),
        ['tool', r.toolId],
        ['use-type', r.useType],
        ['period', r.period],
      ],
      postings,
      eventId: r.eventId,
    });
  }
  for (const i of invoiced) {
    const postings: Posting[] = [
      { account: receivable(i.affiliateId), amount: i.total },
      { account: unbilled(i.affiliateId), amount: -i.subtotal },
      ...i.taxes.map((t) => ({ account: taxAccount(t.id), amount: -t.amount })),
    ].filter((p) => p.amount !== 0);
    if (postings.length === 0) continue;
    transactions.push({
      date: i.issuedAt.slice(0, 10),
      period: i.period,
      payee: payee(i.affiliateId),
      narration: `invoice ${i.number} (${i.period})`,
      meta: [['invoice', i.number], ['event', i.eventId], ['period', i.period], ...i.taxes.map((t) => [`tax-${accountComponent(t.id).toLowerCase()}`, `${t.name} ${t.rate} % of ${formatMinor(t.base, cfg.minorUnit)}`] as [string, string])],
      postings,
      eventId: i.eventId,
    });
  }
  for (const p of paid) {
    transactions.push({
      date: p.paidOn,
      period: p.paidOn.slice(0, 7),
      payee: payee(p.affiliateId),
      narration: `payment (${p.method}, ${p.reference})`,
      meta: [['event', p.eventId], ['method', p.method], ['reference', p.reference], ['by', p.by]],
      postings: [
        { account: account('Assets:Cash'), amount: p.amount },
        { account: receivable(p.affiliateId), amount: -p.amount },
      ],
      eventId: p.eventId,
    });
  }
  if (before && opts.from) {
    const sums = new Map<string, number>();
    const add = (account: string, amount: number) => sums.set(account, (sums.get(account) ?? 0) + amount);
    for (const p of before.parts) {
      add(unbilled(p.affiliateId), p.amount);
      add(partAccount(p, p.toolId), -p.amount);
    }
    for (const i of before.invoices) {
      add(receivable(i.affiliateId), i.total);
      add(unbilled(i.affiliateId), -i.subtotal);
      for (const t of i.taxes) add(taxAccount(t.id), -t.amount);
    }
    for (const p of before.paid) {
      add(account('Assets:Cash'), p.amount);
      add(receivable(p.affiliateId), -p.amount);
    }
    const postings = [...sums].filter(([, a]) => a !== 0).map(([account, amount]) => ({ account, amount })).sort((a, b) => a.account.localeCompare(b.account));
    if (postings.length) transactions.push({ date: dayBefore(`${opts.from}-01`), period: opts.from, payee: '', narration: `balances carried from before ${opts.from}`, meta: [], postings, eventId: 0 });
  }
  transactions.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : a.eventId - b.eventId));
  return { currency: cfg.currency, minorUnit: cfg.minorUnit, title: opts.title, transactions, accounts };
}

const quote = (s: string) => `"${s.replace(/[\r\n\t]+/g, ' ').replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** The book as Beancount text (`q`: the months it holds, for its heading); each account opened on the day it is first used. */
export function renderBeancount(book: MoneyBook, q: ExportQuery = {}): string {
  const money = (minor: number) => `${formatMinor(minor, book.minorUnit)} ${book.currency}`;
  const list = book.transactions;
  const firstUse = new Map<string, string>();
  for (const t of list) for (const p of t.postings) if (!firstUse.has(p.account) || t.date < firstUse.get(p.account)!) firstUse.set(p.account, t.date);

  const out: string[] = [
    `; ${book.title}: the money of the gateway's journal${q.from || q.to ? `, months ${q.from ?? 'from the first'} to ${q.to ?? 'the last'}` : ''}.`,
    '; Check it with: bean-check <this file>',
    `option "title" ${quote(book.title)}`,
    `option "operating_currency" "${book.currency}"`,
    '',
  ];
  const opens = [...firstUse].sort(([a, da], [b, db]) => (da < db ? -1 : da > db ? 1 : a.localeCompare(b)));
  if (opens.length) out.push(`${opens[0]![1]} commodity ${book.currency}`);
  for (const [name, day] of opens) {
    out.push(`${day} open ${name} ${book.currency}`);
    for (const [k, v] of book.accounts.get(name)?.meta ?? []) out.push(`  ${k}: ${quote(v)}`);
  }
  const width = Math.max(0, ...[...firstUse.keys()].map((a) => a.length)) + 2;
  for (const t of list) {
    out.push('', `${t.date} * ${quote(t.payee)} ${quote(t.narration)}`);
    for (const [k, v] of t.meta) out.push(`  ${k}: ${typeof v === 'number' ? String(v) : quote(v)}`);
    for (const p of t.postings) out.push(`  ${p.account.padEnd(width)}${money(p.amount).padStart(16)}`);
  }
  return out.join('\n') + '\n';
}

/** The journal's money, months `from`…`to`, as a Beancount file. */
export function beancountExport(journal: Journal, cfg: BillingConfig, q: ExportQuery, title: string): string {
  for (const [name, m] of [['from', q.from], ['to', q.to]] as const) {
    if (m !== undefined && !MONTH.test(m)) throw new BillingError(`${name}: a month written YYYY-MM, not "${m}"`);
  }
  if (q.from && q.to && q.to < q.from) throw new BillingError(`to: ${q.to} comes before from (${q.from})`);
  return renderBeancount(moneyBook(journal, cfg, { from: q.from, to: q.to, title }), q);
}
