/**
 * Invoices and payments through the journal on disk: numbers given when a month is closed,
 * gapless per year and never reused (also after the journal is opened again), taxes per invoice,
 * balances, a payment typed twice refused; the PDF read back with Debian's pdftotext (poppler-utils)
 * and every amount on it checked.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatMinor } from '../ledger-client/src/money.js';
import { AccessStore } from '../gateway/src/access/store.js';
import { Billing, verifyCharges } from '../gateway/src/billing/billing.js';
import { billingSchema } from '../gateway/src/billing/config.js';
import { balances, invoices, payments, recordPayment } from '../gateway/src/billing/invoice.js';
import { affiliateMonth, affiliateMonthPdf } from '../gateway/src/billing/pdf.js';
import { checkNamedFiles } from '../gateway/src/config/files.js';
import { loadConfig, type ConfigError } from '../gateway/src/config/load.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { startApiLab } from './api-lab.js';
import { tempDir } from './helpers.js';

const hasPdftotext = (() => {
  try {
    execFileSync('pdftotext', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const skipPdf = !hasPdftotext && process.env.CI !== 'true';

const root = join(import.meta.dirname, '..');
export const invoiceConfig = billingSchema.parse({
  currency: 'CAD',
  technicianRate: '25.00',
  materials: { PLA: { pricePerGram: '0.030' } },
  documents: { labName: 'Atelier Partagé de Montréal', address: ['5000 rue Iberville', 'Montréal QC H2H 2S6'], logo: 'docs/screenshots/affiliate.png', timeZone: 'America/Toronto' },
  taxes: [
    { id: 'gst', name: 'GST', rate: '5', registration: '123456789RT0001', exemptUseTypes: ['community'] },
    { id: 'qst', name: 'QST', rate: '9.975', exemptUseTypes: ['community'] },
  ],
  tools: {
    printer: {
      material: 'PLA',
      tariffs: {
        commercial: { hourlyRate: '6.00', incrementMin: 15, minimumCharge: '2.00', split: { maintenance: 30, infrastructure: 20, payback: 50 } },
        community: { hourlyRate: '2.00', billedTime: 'active', incrementMin: 15, split: { maintenance: 60, infrastructure: 40, payback: 0 } },
        project: { hourlyRate: '6.00', cash: false },
      },
      coOwnership: { coOwners: [{ affiliate: 'ada', contribution: '300.00' }, { affiliate: 'bo', contribution: '100.00' }] },
    },
  },
});

let n = 0;
function use(billing: Billing, journal: Journal, affiliateId: string, useType: string, start: string, minutes: number, grams = 0): string {
  const sessionId = `s${++n}`;
  const end = new Date(Date.parse(start) + minutes * 60_000).toISOString();
  journal.durably(() => billing.charge({ sessionId, toolId: 'printer', affiliateId, useType, startedAt: start, endedAt: end, durationS: minutes * 60, activeS: minutes * 60, filamentG: grams }));
  return sessionId;
}

function open(dir: string) {
  const journal = Journal.open(dir);
  return { journal, billing: new Billing(invoiceConfig, journal, new Map(), ['commercial', 'community', 'project']) };
}

function pdfText(pdf: Buffer, dir: string, name: string): string {
  const file = join(dir, name);
  writeFileSync(file, pdf);
  return execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' }).replace(/\u00a0/g, ' ');
}

describe('invoices', () => {
  it('numbers each closed month’s invoices without gaps per year, never twice, also after a restart; taxes once per invoice', () => {
    const dir = tempDir('invoices');
    let { journal, billing } = open(dir);
    const access = new AccessStore(journal);
    for (const [id, name] of [['ada', 'Ada Lovelace'], ['bo', 'Bo Chen'], ['cy', 'Cy Twombly']]) access.put({ id: id!, name: name!, badges: [] });

    const octAda = use(billing, journal, 'ada', 'commercial', '2026-10-05T14:00:00.000Z', 60, 10); // 6.00 + 0.30
    use(billing, journal, 'ada', 'community', '2026-10-06T14:00:00.000Z', 30); // 1.00, no tax
    use(billing, journal, 'bo', 'commercial', '2026-10-07T14:00:00.000Z', 10); // the minimum: 2.00
    use(billing, journal, 'cy', 'project', '2026-10-08T14:00:00.000Z', 60); // value only: no invoice
    const oct = billing.closePeriod('2026-10', 'custodian', new Date('2026-11-01T00:00:00Z'));
    expect(oct.map((i) => [i.number, i.affiliateId])).toEqual([['2026-0001', 'ada'], ['2026-0002', 'bo']]);
    // ada: 6.30 taxed, 1.00 exempt; GST 5 % of 6.30 = 0.315 → 0.32, QST 9.975 % of 6.30 = 0.628… → 0.63
    expect(oct[0]).toMatchObject({ subtotal: 730, taxes: [{ id: 'gst', base: 630, amount: 32 }, { id: 'qst', base: 630, amount: 63 }], tax: 95, total: 825 });
    expect(oct[1]).toMatchObject({ subtotal: 200, taxes: [{ base: 200, amount: 10 }, { base: 200, amount: 20 }], total: 230 });
    expect(() => billing.closePeriod('2026-10', 'custodian', new Date('2026-11-02T00:00:00Z'))).toThrow('2026-10 is already closed');

    // November: a session and a correction of October's (lands in November, taxed as it was).
    use(billing, journal, 'ada', 'commercial', '2026-11-10T15:00:00.000Z', 45, 20); // 4.50 + 0.60
    billing.correct(octAda, { kind: 'use-type', useType: 'community' }, 'was a community project', 'custodian');
    journal.close();

    ({ journal, billing } = open(dir)); // the numbers live in the journal, not in memory
    const nov = billing.closePeriod('2026-11', 'custodian', new Date('2026-12-01T00:00:00Z'));
    expect(nov.map((i) => [i.number, i.affiliateId])).toEqual([['2026-0003', 'ada']]);
    // 5.10 taxed; the correction: 6.30 → 2.30 (community, 60 min at 2.00 + 0.30), −4.00, and the 6.30 leaves the taxed base
    expect(nov[0]).toMatchObject({ subtotal: 510 - 400, taxes: [{ base: 510 - 630, amount: -6 }, { base: -120, amount: -12 }], total: 110 - 18 });
    use(billing, journal, 'bo', 'commercial', '2026-12-01T15:00:00.000Z', 15);
    use(billing, journal, 'bo', 'commercial', '2027-01-01T15:00:00.000Z', 15);
    expect(billing.closePeriod('2027-01', 'custodian', new Date('2027-02-01T00:00:00Z')).map((i) => i.number)).toEqual(['2027-0001']);
    expect(billing.closePeriod('2026-12', 'custodian', new Date('2027-02-01T00:00:00Z')).map((i) => i.number)).toEqual(['2026-0004']);

    const all = invoices(journal);
    for (const year of [2026, 2027]) {
      const seqs = all.filter((i) => i.year === year).map((i) => i.seq);
      expect(seqs).toEqual(seqs.map((_, k) => k + 1));
    }
    expect(new Set(all.map((i) => i.number)).size).toBe(all.length);
    expect(journal.events({ kind: 'billing.invoice' }).map((e) => e.data.number)).toEqual(['2026-0001', '2026-0002', '2026-0003', '2027-0001', '2026-0004']);
    expect(verifyCharges(journal).mismatches).toEqual([]);
    // The table refuses a number twice, whatever writes it; verify finds a gap.
    journal.db.prepare("UPDATE invoices SET seq = 5, number = '2027-0005' WHERE number = '2027-0001'").run();
    expect(verifyCharges(journal).mismatches.map((m) => m.problem)).toEqual(['invoice 2027-0005: number 5 of 2027 where 1 was next (a gap)', 'invoice 2027-0005: the invoices table and its event disagree']);
    expect(() => journal.db.prepare("INSERT INTO invoices (number, year, seq, affiliate_id, period, event_id, subtotal, tax, total) VALUES ('2026-0009', 2026, 2, 'cy', '2026-10', 1, 0, 0, 0)").run()).toThrow(/UNIQUE/);
    journal.close();
  });

  it('records payments, refuses one typed twice, and keeps each balance as invoiced − paid', () => {
    const { journal, billing } = open(tempDir('payments'));
    new AccessStore(journal).put({ id: 'ada', name: 'Ada Lovelace', badges: [] });
    use(billing, journal, 'ada', 'commercial', '2026-10-05T14:00:00.000Z', 60, 10);
    billing.closePeriod('2026-10', 'custodian', new Date('2026-11-01T00:00:00Z'));
    const now = new Date('2026-11-20T12:00:00Z');
    expect(balances(journal, 'ada')).toEqual([{ affiliateId: 'ada', invoiced: 725, paid: 0, balance: 725 }]);
    recordPayment(journal, invoiceConfig, { affiliateId: 'ada', paidOn: '2026-11-03', amount: '5.00', method: 'cheque', reference: 'CHQ 101', by: 'custodian' }, now);
    expect(() => recordPayment(journal, invoiceConfig, { affiliateId: 'ada', paidOn: '2026-11-04', amount: '5.00', method: 'cheque', reference: ' CHQ 101 ', by: 'custodian' }, now)).toThrow(
      'reference: payment "CHQ 101" of ada is already recorded (event',
    );
    expect(() => recordPayment(journal, invoiceConfig, { affiliateId: 'ada', paidOn: '2026-11-31', amount: '1', method: 'cash', reference: 'r', by: 'c' }, now)).toThrow('date: a day written YYYY-MM-DD, not "2026-11-31"');
    expect(() => recordPayment(journal, invoiceConfig, { affiliateId: 'ada', paidOn: '2026-11-21', amount: '1', method: 'cash', reference: 'r', by: 'c' }, now)).toThrow('in the future');
    expect(() => recordPayment(journal, invoiceConfig, { affiliateId: 'ada', paidOn: '2026-11-02', amount: '1.005', method: 'cash', reference: 'r', by: 'c' }, now)).toThrow('more decimals');
    expect(() => recordPayment(journal, invoiceConfig, { affiliateId: 'ada', paidOn: '2026-11-02', amount: '1', method: 'bitcoin', reference: 'r', by: 'c' }, now)).toThrow('method: one of cash, cheque');
    expect(() => recordPayment(journal, invoiceConfig, { affiliateId: 'zed', paidOn: '2026-11-02', amount: '1', method: 'cash', reference: 'r', by: 'c' }, now)).toThrow('no affiliate "zed"');
    recordPayment(journal, invoiceConfig, { affiliateId: 'ada', paidOn: '2026-11-05', amount: '2.25', method: 'transfer', reference: 'INTERAC-77', by: 'custodian' }, now);
    expect(balances(journal)).toEqual([{ affiliateId: 'ada', invoiced: 725, paid: 725, balance: 0 }]);
    expect(payments(journal, { affiliate: 'ada' }).map((p) => [p.paidOn, p.amount, p.method, p.reference, p.by])).toEqual([
      ['2026-11-03', 500, 'cheque', 'CHQ 101', 'custodian'],
      ['2026-11-05', 225, 'transfer', 'INTERAC-77', 'custodian'],
    ]);
    expect(journal.events({ kind: 'billing.payment' })).toHaveLength(2);
    // November's statement shows the account: 7.25 before, the two payments, 0 after.
    const m = affiliateMonth(journal, invoiceConfig, 'ada', '2026-11', { baseDir: root });
    expect(m.account).toMatchObject({ opening: 725, invoiced: 0, paid: 725, closing: 0 });
    journal.close();
  });

  it.skipIf(skipPdf)('writes the month as a PDF with every session, correction, tax and fund on it, in English and in French', async () => {
    const dir = tempDir('invoice-pdf');
    const { journal, billing } = open(dir);
    new AccessStore(journal).put({ id: 'ada', name: 'Ada Lovelace', badges: [] });
    const s1 = use(billing, journal, 'ada', 'commercial', '2026-10-05T14:00:00.000Z', 60, 10);
    use(billing, journal, 'ada', 'community', '2026-10-06T14:00:00.000Z', 30, 12.5);
    use(billing, journal, 'ada', 'project', '2026-10-07T14:00:00.000Z', 60);
    // many sessions: the table runs over a page
    for (let d = 0; d < 60; d++) use(billing, journal, 'ada', 'commercial', `2026-10-${String(10 + (d % 18)).padStart(2, '0')}T12:${String(d % 60).padStart(2, '0')}:00.000Z`, 15 + d, d);
    billing.correct(s1, { kind: 'technician', technicianMin: 30 }, 'helped with bed levelling', 'custodian');
    billing.closePeriod('2026-10', 'custodian', new Date('2026-11-02T10:00:00Z'));
    recordPayment(journal, invoiceConfig, { affiliateId: 'ada', paidOn: '2026-10-20', amount: '10.00', method: 'cheque', reference: 'CHQ 7', by: 'custodian' }, new Date('2026-11-02T10:00:00Z'));

    const m = affiliateMonth(journal, invoiceConfig, 'ada', '2026-10', { baseDir: root });
    const text = pdfText(await affiliateMonthPdf(journal, invoiceConfig, 'ada', '2026-10', { baseDir: root }), dir, 'en.pdf');
    const lines = text.split('\n');
    for (const s of ['Atelier Partagé de Montréal', '5000 rue Iberville', 'Montréal QC H2H 2S6', 'Invoice', 'Invoice number: 2026-0001', 'Issued: 2026-11-02', 'Period: October 2026', 'Ada Lovelace (ada)', 'GST Registration no. 123456789RT0001', 'Correction: helped with bed levelling', 'Where your money goes', 'Page 2', 'Amounts in CAD; times in America/Toronto']) {
      expect(text).toContain(s);
    }
    const money = (minor: number) => formatMinor(minor, 2);
    // Every entry: a line with its time (Toronto), use type, grams and the four amounts in order.
    for (const s of m.statement.sessions) {
      for (const e of s.entries) {
        const cells = [e.useType, ...(e.kind === 'charge' && s.filamentG !== null ? [String(Math.round(s.filamentG * 10) / 10)] : []), money(e.items.usage), money(e.items.material), money(e.items.technician), money(e.items.total)];
        const re = new RegExp(cells.map((c) => c.replace(/[.]/g, '\\.')).join('\\s+'));
        expect(lines.some((l) => re.test(l) && (e.kind === 'correction' || l.includes(new Intl.DateTimeFormat('en-CA', { timeZone: 'America/Toronto', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(s.startedAt!))))), `${s.sessionId} ${e.kind}: ${cells.join(' ')}`).toBe(true);
      }
    }
    expect(m.statement.sessions).toHaveLength(63);
    const row = (label: string, minor: number) => expect(text).toMatch(new RegExp(`${label}\\s+\\$${money(minor).replace('.', '\\.').replace(/\B(?=(\d{3})+\.)/g, ',')}`));
    row('Subtotal', m.subtotal);
    row(`GST 5 % on ${money(m.taxes[0]!.base).replace(/\B(?=(\d{3})+\.)/g, ',')}`, m.taxes[0]!.amount);
    row('QST 9.975 % on [\\d,.]+', m.taxes[1]!.amount);
    row('Total of this invoice', m.total);
    row('Maintenance of the tools', m.statement.funds.maintenance);
    row('Infrastructure', m.statement.funds.infrastructure);
    row('Paying back the co-owners', m.statement.funds.payback);
    row('Material', m.statement.funds.material);
    row('Technician', m.statement.funds.technician);
    expect(m.statement.funds.total).toBe(m.subtotal);
    expect(text).toMatch(/Payment 2026-10-20 \(cheque, CHQ 7\)\s+-\$10\.00/);
    row('Balance', m.total - 1000);
    expect(text).toContain('no charge (value 6.00)');

    const fr = pdfText(await affiliateMonthPdf(journal, invoiceConfig, 'ada', '2026-10', { baseDir: root, language: 'fr' }), dir, 'fr.pdf');
    for (const s of ['Facture', 'Numéro de facture : 2026-0001', 'Période : octobre 2026', 'Où va votre argent', 'Correction : helped with bed levelling', 'Sous-total', 'Total de cette facture', 'Paiement du 2026-10-20 (chèque, CHQ 7)', 'GST 5 % sur', 'QST 9,975 % sur']) {
      expect(fr).toContain(s);
    }
    expect(fr).toContain(`${money(m.total).replace('.', ',').replace(/\B(?=(\d{3})+,)/g, ' ')} $`);
    journal.close();
  });
});

describe('invoices and payments through the API', () => {
  it('gives custodians every invoice and affiliates their own; records payments once; balances per affiliate', { timeout: 60_000 }, async () => {
    const lab = await startApiLab();
    try {
      // Sessions of a month that has ended, charged with the gateway's own tariffs.
      const cfg = billingSchema.parse({
        currency: 'EUR',
        technicianRate: '30.00',
        tools: { printer: { tariffs: { commercial: { hourlyRate: '6.00', incrementMin: 15, minimumCharge: '2.00' }, project: { hourlyRate: '6.00', cash: false } }, coOwnership: { coOwners: [{ affiliate: 'ada', contribution: '300.00' }, { affiliate: 'bo', contribution: '100.00' }] } } },
      });
      const billing = new Billing(cfg, lab.gw.journal);
      use(billing, lab.gw.journal, 'ada', 'commercial', '2026-10-05T14:00:00.000Z', 60); // 6.00
      use(billing, lab.gw.journal, 'bo', 'commercial', '2026-10-06T14:00:00.000Z', 10); // 2.00

      expect((await lab.call('POST', '/api/billing/periods/2026-10/close', 'affiliate', {})).status).toBe(403);
      const closed = await lab.call('POST', '/api/billing/periods/2026-10/close', 'custodian', {});
      expect(closed.status).toBe(200);
      expect(closed.body.invoices).toEqual([{ number: '2026-0001', affiliateId: 'ada', total: 600 }, { number: '2026-0002', affiliateId: 'bo', total: 200 }]);

      expect((await lab.call('GET', '/api/billing/invoices?month=2026-10', 'custodian')).body.map((i: { number: string }) => i.number)).toEqual(['2026-0001', '2026-0002']);
      expect((await lab.call('GET', '/api/billing/invoices', 'affiliate')).body.map((i: { number: string }) => i.number)).toEqual(['2026-0001']);
      expect((await lab.call('GET', '/api/billing/invoices?affiliate=bo', 'affiliate')).status).toBe(403);
      expect((await lab.call('GET', '/api/billing/invoices', 'maintainer')).status).toBe(403);

      const pdf = await lab.gw.app.inject({ method: 'GET', url: '/api/billing/invoices/2026-10/ada', headers: { authorization: `Bearer ${lab.tokens.affiliate}` } });
      expect(pdf.statusCode).toBe(200);
      expect(pdf.headers['content-type']).toBe('application/pdf');
      expect(pdf.headers['content-disposition']).toBe('attachment; filename="invoice-2026-0001-ada.pdf"');
      expect(pdf.rawPayload.subarray(0, 5).toString()).toBe('%PDF-');
      if (!skipPdf) expect(pdfText(pdf.rawPayload, tempDir('api-pdf'), 'ada.pdf')).toContain('Invoice number: 2026-0001');
      const fr = await lab.gw.app.inject({ method: 'GET', url: '/api/billing/invoices/2026-10/ada?lang=fr', headers: { authorization: `Bearer ${lab.tokens.custodian}` } });
      if (!skipPdf) expect(pdfText(fr.rawPayload, tempDir('api-pdf'), 'ada-fr.pdf')).toContain('Numéro de facture : 2026-0001');
      expect((await lab.call('GET', '/api/billing/invoices/2026-10/ada', 'bo')).status).toBe(403);
      expect((await lab.call('GET', '/api/billing/invoices/2026-10/zed', 'custodian')).body).toEqual({ error: 'unknown-affiliate', message: 'no affiliate "zed"' });
      const json = await lab.call('GET', '/api/billing/invoices/2026-10/bo?format=json', 'custodian');
      expect(json.body).toMatchObject({ invoice: { number: '2026-0002', total: 200 }, lab: { name: expect.any(String) }, total: 200 });
      expect(json.body.lab).not.toHaveProperty('logo');

      const pay = { affiliateId: 'ada', date: '2026-11-03', amount: '6.00', method: 'transfer', reference: 'SEPA 42' };
      expect((await lab.call('POST', '/api/billing/payments', 'affiliate', pay)).status).toBe(403);
      const paid = await lab.call('POST', '/api/billing/payments', 'custodian', pay);
      expect(paid.status).toBe(201);
      expect(paid.body).toMatchObject({ affiliateId: 'ada', paidOn: '2026-11-03', amount: 600, method: 'transfer', reference: 'SEPA 42', by: 'carla' });
      const twice = await lab.call('POST', '/api/billing/payments', 'custodian', pay);
      expect(twice.status).toBe(409);
      expect(twice.body).toEqual({ error: 'conflict', message: expect.stringContaining('payment "SEPA 42" of ada is already recorded') });
      const bad = await lab.call('POST', '/api/billing/payments', 'custodian', { ...pay, amount: '6,00', reference: 'x' });
      expect(bad.status).toBe(400);
      expect(bad.body.message).toContain('amount');

      expect((await lab.call('GET', '/api/billing/balances', 'custodian')).body).toEqual([
        { affiliateId: 'ada', invoiced: 600, paid: 600, balance: 0, currency: 'EUR', minorUnit: 2 },
        { affiliateId: 'bo', invoiced: 200, paid: 0, balance: 200, currency: 'EUR', minorUnit: 2 },
      ]);
      expect((await lab.call('GET', '/api/billing/balances', 'bo')).body).toEqual([{ affiliateId: 'bo', invoiced: 200, paid: 0, balance: 200, currency: 'EUR', minorUnit: 2 }]);
      expect((await lab.call('GET', '/api/billing/payments', 'bo')).body).toEqual([]);
      expect((await lab.call('GET', '/api/billing/payments', 'affiliate')).body).toHaveLength(1);
    } finally {
      await lab.stop();
    }
  });
});

describe('invoices and payments on the command line', () => {
  it('closes a month, writes one PDF or all of them to a folder, records a payment once and lists balances', { timeout: 120_000 }, async () => {
    const dir = tempDir('invoice-cli');
    const file = join(dir, 'lab.yaml');
    writeFileSync(
      file,
      `gateway: { name: CLI invoice lab, dataDir: data }
devices: [{ id: n1, kind: metering-node, nodeId: n1, serial: { path: "socket://127.0.0.1:9" } }]
tools: [{ id: printer, node: n1 }]
billing:
  currency: CAD
  documents: { labName: Atelier CLI, address: [1 rue Test], languages: { bo: fr } }
  taxes: [{ id: gst, name: TPS, rate: "5" }]
  tools:
    printer:
      tariffs:
        commercial: { hourlyRate: "6.00", incrementMin: 15, minimumCharge: "2.00" }
`,
    );
    const journal = Journal.open(join(dir, 'data'));
    const billing = new Billing(billingSchema.parse({ currency: 'CAD', taxes: [{ id: 'gst', name: 'TPS', rate: '5' }], tools: { printer: { tariffs: { commercial: { hourlyRate: '6.00', incrementMin: 15, minimumCharge: '2.00' } } } } }), journal);
    const access = new AccessStore(journal);
    access.put({ id: 'ada', name: 'Ada', badges: [] });
    access.put({ id: 'bo', name: 'Bo', badges: [] });
    use(billing, journal, 'ada', 'commercial', '2026-10-05T14:00:00.000Z', 60);
    use(billing, journal, 'bo', 'commercial', '2026-10-06T14:00:00.000Z', 30);
    journal.close();

    const closed = await ovn('billing', 'close', '2026-10', '--config', file, '--by', 'custodian');
    expect(closed).toMatchObject({ code: 0, stdout: '2026-10 closed: 2 invoices (2026-0001 … 2026-0002)\n' });
    const one = await ovn('billing', 'invoice', '--config', file, '--affiliate', 'ada', '--month', '2026-10', '--out', join(dir, 'ada.pdf'));
    expect(one).toMatchObject({ code: 0, stdout: `${join(dir, 'ada.pdf')}: invoice 2026-0001, 6.30 CAD\n` });
    const all = await ovn('billing', 'invoices', '--config', file, '--month', '2026-10', '--out', join(dir, 'out'));
    expect(all.code).toBe(0);
    expect(all.stdout).toContain(`2 documents of 2026-10 in ${join(dir, 'out')}`);
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(['invoice-2026-0001-ada.pdf', 'invoice-2026-0002-bo.pdf']);
    if (!skipPdf) {
      expect(pdfText(readFileSync(join(dir, 'out', 'invoice-2026-0002-bo.pdf')), dir, 'bo.pdf')).toMatch(/Numéro de facture : 2026-0002[\s\S]*TPS 5 % sur 3,00\s+0,15 \$[\s\S]*Total de cette facture\s+3,15 \$/);
    }
    const pay = ['billing', 'pay', '--config', file, '--affiliate', 'ada', '--amount', '6.30', '--date', '2026-11-02', '--method', 'cheque', '--reference', '1001', '--by', 'custodian'];
    expect((await ovn(...pay)).stdout).toMatch(/^payment \d+: 6\.30 CAD from ada on 2026-11-02; balance 0\.00 CAD\n$/);
    const again = await ovn(...pay);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('payment "1001" of ada is already recorded');
    const balances = await ovn('billing', 'balances', '--config', file);
    expect(balances.stdout.split('\n').slice(1, 3).map((l) => l.split(/\s+/))).toEqual([
      ['ada', '6.30', '6.30', '0.00'],
      ['bo', '3.15', '0.00', '3.15'],
    ]);
    expect((await ovn('billing', 'payments', '--config', file)).stdout).toContain('2026-11-02  ada');
  });
});

/** Runs `ovn-gateway …` as a user would, to its exit. */
function ovn(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin', 'ovn-gateway.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the logo of statements and invoices', () => {
  it('is checked with the other files the config names: readable, and a PNG or JPEG', () => {
    const dir = tempDir('invoice-logo');
    const file = join(dir, 'lab.yaml');
    const lab = (logo: string) =>
      writeFileSync(
        file,
        `devices: [{ id: n1, kind: metering-node, nodeId: n1, serial: { path: "socket://127.0.0.1:9" } }]
tools: [{ id: printer, node: n1 }]
billing: { documents: { labName: Atelier, logo: ${logo} } }
`,
      );
    const problems = () => {
      try {
        checkNamedFiles(loadConfig(file));
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    lab('missing.png');
    expect(problems()).toEqual([`billing.documents.logo (${join(dir, 'missing.png')}): cannot read it: ENOENT`]);
    writeFileSync(join(dir, 'logo.svg'), '<svg/>');
    lab('logo.svg');
    expect(problems()).toEqual([`billing.documents.logo (${join(dir, 'logo.svg')}): not a PNG or JPEG image (statements and invoices take only those)`]);
    lab(join(root, 'docs', 'screenshots', 'affiliate.png'));
    expect(problems()).toEqual([]);
  });
});
