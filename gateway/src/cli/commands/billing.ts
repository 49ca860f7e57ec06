/** `ovn-gateway billing`: charges, statements, corrections and accounting periods, from the config's tariffs and the journal. */
import { InvalidArgumentError, type Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Billing, printerMaterials, verifyCharges, type CorrectionChange } from '../../billing/billing.js';
import { formatMinor } from '../../../../ledger-client/src/money.js';
import { affiliatesWithMoney, PAYMENT_METHODS } from '../../billing/invoice.js';
import { isLanguage, type Language } from '../../billing/messages.js';
import { BillingError } from '../../billing/money.js';
import { pdfName, renderPdf } from '../../billing/pdf.js';
import { statementCsv, statementDocument, statementTable } from '../../billing/render.js';
import { statement } from '../../billing/statement.js';
import { loadConfig } from '../../config/load.js';
import { useTypeIds } from '../../config/schema.js';
import type { Journal } from '../../journal/journal.js';
import { CliError, withJournal } from '../common.js';
import { out, complain, write } from '../print.js';

/** Runs `fn` with the billing of the config's journal. */
function withBilling<T>(opts: { config: string }, fn: (billing: Billing, journal: Journal) => T): T {
  const { config: cfg, baseDir } = loadConfig(opts.config);
  if (!cfg.billing) throw new CliError(`${opts.config}: no billing section (tariffs, materials, co-owners)`);
  const billing = cfg.billing;
  return withJournal({ data: resolve(baseDir, cfg.gateway.dataDir) }, (journal) => {
    try {
      return fn(new Billing(billing, journal, printerMaterials(cfg), useTypeIds(cfg.useTypes), { baseDir, gatewayName: cfg.gateway.name }), journal);
    } catch (err) {
      if (err instanceof BillingError) throw new CliError(err.message);
      throw err;
    }
  });
}

const language = (v: string): Language => {
  if (!isLanguage(v)) throw new InvalidArgumentError('en or fr');
  return v;
};

const month = (v: string) => {
  if (!/^\d{4}-(0[1-9]|1[0-2])(-\d{2})?$/.test(v)) throw new InvalidArgumentError('expected a month YYYY-MM (or a date, whose month counts)');
  return v.slice(0, 7);
};

export function registerBillingCommands(program: Command): void {
  const billingCmd = program.command('billing').description('charges, statements, corrections and accounting periods (needs the config: tariffs and agreements live there)');
  billingCmd
    .command('statement')
    .description('sessions with their line items, fund totals and co-owner payback for months --from … --to (inclusive)')
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .requiredOption('--from <YYYY-MM>', 'first month', month)
    .option('--to <YYYY-MM>', 'last month (default: --from)', month)
    .option('--affiliate <id>')
    .option('--tool <id>')
    .option('--format <format>', 'table, csv or json', 'table')
    .action((opts: { config: string; from: string; to?: string; affiliate?: string; tool?: string; format: string }) =>
      withBilling(opts, (billing, journal) => {
        const st = statement(journal, { from: opts.from, to: opts.to ?? opts.from, affiliate: opts.affiliate, tool: opts.tool });
        const { currency, minorUnit } = billing.cfg;
        if (opts.format === 'csv') write(statementCsv(st, currency, minorUnit));
        else if (opts.format === 'json') out(JSON.stringify(statementDocument(st, billing), null, 2));
        else if (opts.format === 'table') write(statementTable(st, billing.payback(), currency, minorUnit));
        else throw new CliError(`--format: table, csv or json, not "${opts.format}"`);
      }),
    );
  billingCmd
    .command('export')
    .description("the journal's money as a double-entry file for an accountant's tools: every charge, correction, invoice with its taxes and payment, balanced to the cent (check it with bean-check)")
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .option('--format <format>', 'beancount', 'beancount')
    .option('--from <YYYY-MM>', 'first month (earlier money comes in as opening balances; default: the first)', month)
    .option('--to <YYYY-MM>', 'last month (default: the last)', month)
    .action((opts: { config: string; format: string; from?: string; to?: string }) => {
      if (opts.format !== 'beancount') throw new CliError(`--format: beancount, not "${opts.format}"`);
      if (opts.from && opts.to && opts.to < opts.from) throw new CliError(`--to: ${opts.to} comes before --from (${opts.from})`);
      withBilling(opts, (billing) => write(billing.exportBeancount({ from: opts.from, to: opts.to })));
    });
  billingCmd
    .command('correct')
    .argument('<session>', 'the session id (from the statement)')
    .description("correct a session's charge: a new event referencing it; statements show the original, the correction and the net")
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .requiredOption('--reason <text>', 'why (required)')
    .requiredOption('--by <who>', 'the custodian correcting it')
    .option('--void', 'cancel the charge')
    .option('--use-type <type>', 'charge it as another use type')
    .option('--material-g <grams>', 'the material really used, g (0: the affiliate brought their own)', Number)
    .option('--technician-min <minutes>', 'technician time, minutes', Number)
    .action((sessionId: string, opts: { config: string; reason: string; by: string; void?: boolean; useType?: string; materialG?: number; technicianMin?: number }) => {
      const changes: CorrectionChange[] = [
        ...(opts.void ? [{ kind: 'void' } as const] : []),
        ...(opts.useType ? [{ kind: 'use-type', useType: opts.useType } as const] : []),
        ...(opts.materialG !== undefined ? [{ kind: 'material', filamentG: opts.materialG } as const] : []),
        ...(opts.technicianMin !== undefined ? [{ kind: 'technician', technicianMin: opts.technicianMin } as const] : []),
      ];
      if (changes.length !== 1) throw new CliError('give exactly one of --void, --use-type, --material-g, --technician-min');
      if ('filamentG' in changes[0]! && !(changes[0].filamentG >= 0)) throw new CliError('--material-g: a number of grams ≥ 0');
      if ('technicianMin' in changes[0]! && !(Number.isInteger(changes[0].technicianMin) && changes[0].technicianMin >= 0)) throw new CliError('--technician-min: whole minutes ≥ 0');
      withBilling(opts, (billing) => {
        const c = billing.correct(sessionId, changes[0]!, opts.reason, opts.by);
        const total = c.delta.reduce((a, p) => a + p.amount, 0);
        out(`correction ${c.eventId} of charge ${c.corrects} in ${c.period}: ${total >= 0 ? '+' : ''}${formatMinor(total, billing.cfg.minorUnit)} ${billing.cfg.currency}`);
      });
    });
  billingCmd
    .command('close')
    .argument('<period>', 'the month, YYYY-MM')
    .description('close a month that has ended (UTC): every affiliate with money in it gets an invoice number; later corrections to its sessions land in the next open month')
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .requiredOption('--by <who>', 'the custodian closing it')
    .action((period: string, opts: { config: string; by: string }) =>
      withBilling(opts, (billing) => {
        const issued = billing.closePeriod(period, opts.by, new Date());
        const numbers = issued.length > 1 ? ` (${issued[0]!.number} … ${issued.at(-1)!.number})` : issued.length ? ` (${issued[0]!.number})` : '';
        out(`${period} closed: ${issued.length} ${issued.length === 1 ? 'invoice' : 'invoices'}${numbers}`);
      }),
    );
  billingCmd
    .command('invoice')
    .description("an affiliate's month as a PDF: the invoice with its number once the month is closed, else the statement so far")
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .requiredOption('--affiliate <id>')
    .requiredOption('--month <YYYY-MM>', 'the month', month)
    .option('--lang <language>', 'en or fr (default: the affiliate\'s, from billing.documents)', language)
    .option('--out <file>', 'where to write it (default: invoice-<number>-<affiliate>.pdf, or statement-<month>-<affiliate>.pdf, here)')
    .action((opts: { config: string; affiliate: string; month: string; lang?: Language; out?: string }) =>
      withBilling(opts, async (billing) => {
        const m = billing.month(opts.affiliate, opts.month, opts.lang);
        const file = resolve(opts.out ?? pdfName(m));
        writeFileSync(file, await renderPdf(m));
        out(`${file}: ${m.invoice ? `invoice ${m.invoice.number}` : `statement (no invoice${m.closed ? ': nothing to pay' : ': the month is open'})`}, ${formatMinor(m.total, billing.cfg.minorUnit)} ${billing.cfg.currency}`);
      }),
    );
  billingCmd
    .command('invoices')
    .description("every affiliate's PDF of a month into a folder: the invoices once the month is closed, the statements so far before")
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .requiredOption('--month <YYYY-MM>', 'the month', month)
    .requiredOption('--out <dir>', 'the folder (made if missing)')
    .option('--lang <language>', 'en or fr for all (default: each affiliate\'s)', language)
    .action((opts: { config: string; month: string; out: string; lang?: Language }) =>
      withBilling(opts, async (billing, journal) => {
        mkdirSync(opts.out, { recursive: true });
        const who = [...new Set([...affiliatesWithMoney(journal, opts.month), ...billing.invoices({ period: opts.month }).map((i) => i.affiliateId)])].sort();
        for (const affiliate of who) {
          const m = billing.month(affiliate, opts.month, opts.lang);
          writeFileSync(join(opts.out, pdfName(m)), await renderPdf(m));
          out(`${pdfName(m)}  ${(m.invoice?.number ?? '-').padEnd(14)} ${formatMinor(m.total, billing.cfg.minorUnit).padStart(12)} ${billing.cfg.currency}`);
        }
        out(`${who.length} ${who.length === 1 ? 'document' : 'documents'} of ${opts.month} in ${resolve(opts.out)}`);
      }),
    );
  billingCmd
    .command('pay')
    .description("record a payment an affiliate made (journaled; the same reference twice for one affiliate is refused)")
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .requiredOption('--affiliate <id>')
    .requiredOption('--amount <amount>', 'in the currency, e.g. 42.50')
    .requiredOption('--date <YYYY-MM-DD>', 'the day it was paid')
    .requiredOption('--method <method>', PAYMENT_METHODS.join(', '))
    .requiredOption('--reference <text>', 'cheque number, transfer reference, receipt number')
    .requiredOption('--by <who>', 'the custodian recording it')
    .action((opts: { config: string; affiliate: string; amount: string; date: string; method: string; reference: string; by: string }) =>
      withBilling(opts, (billing) => {
        const p = billing.recordPayment({ affiliateId: opts.affiliate, paidOn: opts.date, amount: opts.amount, method: opts.method, reference: opts.reference, by: opts.by }, new Date());
        const [b] = billing.balances(opts.affiliate);
        out(`payment ${p.eventId}: ${formatMinor(p.amount, billing.cfg.minorUnit)} ${billing.cfg.currency} from ${p.affiliateId} on ${p.paidOn}; balance ${formatMinor(b!.balance, billing.cfg.minorUnit)} ${billing.cfg.currency}`);
      }),
    );
  billingCmd
    .command('payments')
    .description('payments recorded, in date order')
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .option('--affiliate <id>')
    .option('--format <format>', 'table or json', 'table')
    .action((opts: { config: string; affiliate?: string; format: string }) =>
      withBilling(opts, (billing) => {
        const list = billing.payments({ affiliate: opts.affiliate });
        if (opts.format === 'json') return out(JSON.stringify(list, null, 2));
        if (opts.format !== 'table') throw new CliError(`--format: table or json, not "${opts.format}"`);
        for (const p of list) out(`${p.paidOn}  ${p.affiliateId.padEnd(16)} ${formatMinor(p.amount, billing.cfg.minorUnit).padStart(12)}  ${p.method.padEnd(9)} ${p.reference}  (by ${p.by})`);
        out(`${list.length} ${list.length === 1 ? 'payment' : 'payments'}`);
      }),
    );
  billingCmd
    .command('balances')
    .description('per affiliate: invoiced, paid and the balance (invoiced − paid)')
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .option('--affiliate <id>')
    .option('--format <format>', 'table or json', 'table')
    .action((opts: { config: string; affiliate?: string; format: string }) =>
      withBilling(opts, (billing) => {
        const list = billing.balances(opts.affiliate);
        if (opts.format === 'json') return out(JSON.stringify(list, null, 2));
        if (opts.format !== 'table') throw new CliError(`--format: table or json, not "${opts.format}"`);
        const money = (m: number) => formatMinor(m, billing.cfg.minorUnit).padStart(12);
        out(`${'affiliate'.padEnd(16)} ${'invoiced'.padStart(12)} ${'paid'.padStart(12)} ${'balance'.padStart(12)}  (${billing.cfg.currency})`);
        for (const b of list) out(`${b.affiliateId.padEnd(16)} ${money(b.invoiced)} ${money(b.paid)} ${money(b.balance)}`);
      }),
    );
  billingCmd
    .command('verify')
    .description('recompute every charge and correction from the inputs the journal kept, and compare')
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .action((opts: { config: string }) =>
      withBilling(opts, (_billing, journal) => {
        const r = verifyCharges(journal);
        if (r.mismatches.length) {
          for (const m of r.mismatches) complain(`event ${m.eventId} (${m.kind}, session ${m.sessionId}): ${m.problem}`);
          process.exit(1);
        }
        out(`${r.checked} charges and corrections recomputed: all match`);
      }),
    );
}
