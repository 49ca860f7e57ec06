/**
 * An affiliate's month as a PDF, made in process with pdfkit (no browser, so a Pi makes it):
 * the lab's name, address and logo, the affiliate, each session with its line items and
 * corrections with their reasons, the taxes, where the money goes (per fund), the invoice number
 * once the month is closed, and the account (balance before, this invoice, payments, balance).
 * `affiliateMonthPdf` is what a month-closed message attaches.
 */
import PDFDocument from 'pdfkit';
import { resolve } from 'node:path';
import { formatMinor } from '../../../ledger-client/src/money.js';
import type { Journal } from '../journal/journal.js';
import type { BillingConfig } from './config.js';
import { accountFor, checkMonth, invoiceFor, taxesOf, type Invoice, type Payment, type TaxLine } from './invoice.js';
import { formatter, type Language, type MessageKey } from './messages.js';
import { statement, type Statement } from './statement.js';

export interface AffiliateMonth {
  lab: { name: string; address: string[]; logo: string | null };
  affiliate: { id: string; name: string };
  period: string;
  currency: string;
  minorUnit: number;
  timeZone: string;
  language: Language;
  /** null: the month is open (a statement without a number) or there is nothing to pay. */
  invoice: Invoice | null;
  closed: boolean;
  statement: Statement;
  subtotal: number;
  taxes: TaxLine[];
  total: number;
  account: { opening: number; invoiced: number; payments: Payment[]; paid: number; closing: number };
}

export interface DocumentOptions {
  /** What a relative logo path is relative to (the config file's directory). */
  baseDir?: string;
  /** The lab's name when billing.documents is not configured. */
  gatewayName?: string;
  /** Overrides the configured language. */
  language?: Language;
}

/** Everything on an affiliate's month document, read from the journal. */
export function affiliateMonth(journal: Journal, cfg: BillingConfig, affiliateId: string, period: string, opts: DocumentOptions = {}): AffiliateMonth {
  checkMonth(period);
  const docs = cfg.documents;
  const name = (journal.prepared('SELECT name FROM affiliates WHERE id = ?').pluck().get(affiliateId) as string | undefined) ?? affiliateId;
  const st = statement(journal, { from: period, to: period, affiliate: affiliateId });
  const closed = journal.prepared("SELECT 1 FROM events WHERE kind = 'billing.period-closed' AND json_extract(data, '$.period') = ?").get(period) !== undefined;
  const invoice = invoiceFor(journal, affiliateId, period);
  // A numbered invoice keeps the taxes it was issued with; an open month's are computed now.
  const taxes = invoice ? invoice.taxes : taxesOf(journal, st, cfg.taxes);
  const subtotal = invoice ? invoice.subtotal : st.funds.total;
  const total = subtotal + taxes.reduce((a, t) => a + t.amount, 0);
  return {
    lab: { name: docs?.labName ?? opts.gatewayName ?? 'ovn-gateway', address: docs?.address ?? [], logo: docs?.logo ? resolve(opts.baseDir ?? '.', docs.logo) : null },
    affiliate: { id: affiliateId, name },
    period,
    currency: cfg.currency,
    minorUnit: cfg.minorUnit,
    timeZone: docs?.timeZone ?? 'UTC',
    language: opts.language ?? docs?.languages[affiliateId] ?? docs?.language ?? 'en',
    invoice,
    closed,
    statement: st,
    subtotal,
    taxes,
    total,
    account: accountFor(journal, affiliateId, period, invoice),
  };
}

/** The affiliate's month as a PDF (for a download, a folder of invoices or a mail's attachment). */
export function affiliateMonthPdf(journal: Journal, cfg: BillingConfig, affiliateId: string, period: string, opts: DocumentOptions = {}): Promise<Buffer> {
  return renderPdf(affiliateMonth(journal, cfg, affiliateId, period, opts));
}

/** The file name of an affiliate's month document. */
export const pdfName = (m: Pick<AffiliateMonth, 'invoice' | 'affiliate' | 'period'>) => (m.invoice ? `invoice-${m.invoice.number}-${m.affiliate.id}.pdf` : `statement-${m.period}-${m.affiliate.id}.pdf`);

// Columns of the sessions table: key, width (points), right-aligned.
const COLUMNS: [MessageKey, number, boolean][] = [
  ['date', 62, false],
  ['time', 58, false],
  ['tool', 62, false],
  ['useType', 66, false],
  ['grams', 34, true],
  ['usage', 56, true],
  ['material', 56, true],
  ['technician', 56, true],
  ['total', 62, true],
];

export function renderPdf(m: AffiliateMonth): Promise<Buffer> {
  const f = formatter(m.language, m.currency, m.minorUnit, m.timeZone);
  const amt = (minor: number) => f.amount(formatMinor(minor, m.minorUnit));
  const money = (minor: number) => f.money(formatMinor(minor, m.minorUnit));
  const title = m.invoice ? f.t('invoice') : f.t('statement');
  const doc = new PDFDocument({
    size: 'LETTER',
    margin: 50,
    bufferPages: true,
    // Fixed dates: the same month gives the same document.
    info: { Title: `${title} ${m.invoice?.number ?? m.period} — ${m.affiliate.name}`, Author: m.lab.name, CreationDate: new Date(m.invoice?.issuedAt ?? `${m.period}-01T00:00:00Z`) },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((res, rej) => {
    doc.on('end', () => res(Buffer.concat(chunks)));
    doc.on('error', rej);
  });

  const left = doc.page.margins.left;
  const width = doc.page.width - left - doc.page.margins.right;
  const bottom = () => doc.page.height - doc.page.margins.bottom - 20;

  // ---- the lab, the affiliate, the number ----
  let y = 50;
  let textLeft = left;
  if (m.lab.logo) {
    doc.image(m.lab.logo, left, y, { fit: [64, 64] });
    textLeft = left + 76;
  }
  doc.font('Helvetica-Bold').fontSize(14).text(m.lab.name, textLeft, y, { width: 260 });
  doc.font('Helvetica').fontSize(9);
  for (const line of m.lab.address) doc.text(line, textLeft, doc.y, { width: 260 });
  const regs = m.taxes.filter((t) => t.registration).map((t) => `${t.name} ${f.t('registration', { number: t.registration! })}`);
  for (const r of regs) doc.text(r, textLeft, doc.y, { width: 260 });
  const labBottom = Math.max(doc.y, m.lab.logo ? y + 64 : 0);

  doc.font('Helvetica-Bold').fontSize(16).text(title, left + 300, y, { width: width - 300, align: 'right' });
  doc.font('Helvetica').fontSize(9);
  const right = (s: string) => doc.text(s, left + 260, doc.y, { width: width - 260, align: 'right' });
  if (m.invoice) {
    right(`${f.label('invoiceNumber')} ${m.invoice.number}`);
    right(`${f.label('issued')} ${f.day(m.invoice.issuedAt)}`);
  }
  right(`${f.label('period')} ${f.month(m.period)}`);
  y = Math.max(labBottom, doc.y) + 16;

  doc.font('Helvetica-Bold').text(f.t('billedTo'), left, y);
  doc.font('Helvetica').text(`${m.affiliate.name} (${m.affiliate.id})`, left, doc.y);
  if (!m.invoice) doc.moveDown(0.3).font('Helvetica-Oblique').text(m.closed ? f.t('noInvoice') : f.t('noNumberYet'), left, doc.y, { width });
  doc.font('Helvetica').fontSize(8).fillColor('#555').text(`${f.t('amountsIn', { currency: m.currency })}; ${f.t('timesIn', { zone: m.timeZone })}`, left, doc.y + 4, { width });
  doc.fillColor('black');
  y = doc.y + 10;

  // ---- sessions ----
  const header = () => {
    doc.font('Helvetica-Bold').fontSize(8);
    let x = left;
    for (const [key, w, r] of COLUMNS) {
      cell(f.t(key), x, w, r);
      x += w;
    }
    y += 12;
    doc.moveTo(left, y - 2).lineTo(left + width, y - 2).lineWidth(0.5).stroke();
    doc.font('Helvetica').fontSize(8);
  };
  const room = (h: number) => {
    if (y + h <= bottom()) return;
    doc.addPage();
    y = doc.page.margins.top;
    header();
  };
  /**
   * A table cell at (x, y) in a column `w` wide, cut with an ellipsis when longer. Placed by
   * hand, without pdfkit's line wrapping, which costs more than the rest of the page.
   */
  const cell = (text: string, x: number, w: number, alignRight: boolean) => {
    if (!text) return;
    const space = w - 4;
    let s = text;
    let sw = doc.widthOfString(s);
    if (sw > space) {
      while (s.length > 1 && doc.widthOfString(`${s}…`) > space) s = s.slice(0, -1);
      s = `${s}…`;
      sw = doc.widthOfString(s);
    }
    doc.text(s, alignRight ? x + space - sw : x, y, { lineBreak: false });
  };
  const row = (cells: string[], opts: { bold?: boolean } = {}) => {
    room(11);
    doc.font(opts.bold ? 'Helvetica-Bold' : 'Helvetica').fontSize(8);
    let x = left;
    COLUMNS.forEach(([, w, r], i) => {
      cell(cells[i] ?? '', x, w, r);
      x += w;
    });
    y += 11;
  };
  /** A line of its own under the row before, across the table. */
  const note = (text: string) => {
    room(11);
    doc.font('Helvetica-Oblique').fontSize(8).text(text, left + 12, y, { width: width - 12, height: 10, ellipsis: true });
    y += 11;
  };

  header();
  if (m.statement.sessions.length === 0) note(f.t('noSessions'));
  for (const s of m.statement.sessions) {
    for (const e of s.entries) {
      const items = [amt(e.items.usage), amt(e.items.material), amt(e.items.technician), amt(e.items.total)];
      if (e.kind === 'charge') {
        const when = s.startedAt ?? s.endedAt;
        const value = !e.cash && e.value !== 0 ? f.t('valueOnly', { value: amt(e.value) }) : null;
        row([when ? f.day(when) : '', s.startedAt && s.endedAt ? `${f.time(s.startedAt)}–${f.time(s.endedAt)}` : '', s.toolId, e.useType, s.filamentG !== null ? f.grams(s.filamentG) : '', ...items]);
        if (value) note(value);
      } else {
        const change = e.correction!.change as { kind?: string; filamentG?: number } | null;
        const grams = change?.kind === 'material' && typeof change.filamentG === 'number' ? f.grams(change.filamentG) : '';
        note(f.t('correction', { reason: e.correction!.reason }));
        row(['', '', '', e.useType, grams, ...items]);
      }
    }
  }
  doc.moveTo(left, y + 1).lineTo(left + width, y + 1).lineWidth(0.5).stroke();
  y += 6;

  // ---- totals ----
  const totalsX = left + width - 260;
  const line = (label: string, minor: number, bold = false) => {
    room(13);
    doc.font(bold ? 'Helvetica-Bold' : 'Helvetica').fontSize(9);
    doc.text(label, totalsX, y, { width: 170, lineBreak: false, ellipsis: true });
    doc.text(money(minor), totalsX + 170, y, { width: 90, align: 'right', lineBreak: false });
    y += 13;
  };
  line(f.t('subtotal'), m.subtotal);
  for (const t of m.taxes) line(f.t('taxLine', { name: t.name, rate: f.rate(t.rate), base: amt(t.base) }), t.amount);
  line(f.t('totalDue'), m.total, true);
  if (m.statement.value) {
    room(13);
    doc.font('Helvetica-Oblique').fontSize(8).text(f.t('valueNote', { value: money(m.statement.value) }), left, y, { width });
    y = doc.y + 4;
  }

  // ---- where the money goes ----
  y += 10;
  room(90);
  doc.font('Helvetica-Bold').fontSize(10).text(f.t('whereMoneyGoes'), left, y);
  y = doc.y + 4;
  const funds: [MessageKey, number][] = [
    ['fundMaterial', m.statement.funds.material],
    ['fundTechnician', m.statement.funds.technician],
    ['fundMaintenance', m.statement.funds.maintenance],
    ['fundInfrastructure', m.statement.funds.infrastructure],
    ['fundPayback', m.statement.funds.payback],
  ];
  const fundLine = (label: string, minor: number) => {
    doc.font('Helvetica').fontSize(9).text(label, left, y, { width: 200, lineBreak: false });
    doc.text(money(minor), left + 200, y, { width: 90, align: 'right', lineBreak: false });
    y += 12;
  };
  for (const [key, minor] of funds) if (minor !== 0) fundLine(f.t(key), minor);

  // ---- the account ----
  y += 10;
  room(80);
  doc.font('Helvetica-Bold').fontSize(10).text(f.t('account'), left, y);
  y = doc.y + 4;
  fundLine(f.t('opening'), m.account.opening);
  if (m.invoice) fundLine(f.t('charges'), m.account.invoiced);
  for (const p of m.account.payments) {
    room(12);
    fundLine(f.t('payment', { date: p.paidOn, method: f.t(p.method as MessageKey), reference: p.reference }), -p.amount);
  }
  doc.font('Helvetica-Bold');
  fundLine(f.t('closing'), m.account.closing);

  // ---- page numbers ----
  const range = doc.bufferedPageRange();
  for (let i = range.start; i < range.start + range.count; i++) {
    doc.switchToPage(i);
    const margin = doc.page.margins.bottom;
    doc.page.margins.bottom = 0; // writing below the margin would otherwise start a page
    doc.font('Helvetica').fontSize(7).fillColor('#555');
    const footer = `${m.lab.name} · ${m.invoice ? m.invoice.number : m.period} · ${m.affiliate.id} · ${f.t('page', { n: i + 1 })}`;
    doc.text(footer, left, doc.page.height - margin + 10, { width, align: 'center', lineBreak: false });
    doc.page.margins.bottom = margin;
  }
  doc.end();
  return done;
}
