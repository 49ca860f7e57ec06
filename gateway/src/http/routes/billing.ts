/** Billing: statements, co-owner payback, corrections and closing months. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { FastifyRequest } from 'fastify';
import type { CorrectionChange } from '../../billing/billing.js';
import { DuplicatePaymentError, PAYMENT_METHODS } from '../../billing/invoice.js';
import { pdfName, renderPdf } from '../../billing/pdf.js';
import { statementCsv, statementDocument } from '../../billing/render.js';
import { statement } from '../../billing/statement.js';
import { actor, allow, ownAffiliate } from '../auth.js';
import { billingOf, type AppContext } from '../context.js';
import { freeText } from '../../config/common.js';
import { HttpError } from '../errors.js';
import { idParam } from '../fields.js';

const monthOf = z
  .string()
  .regex(/^\d{4}-(0[1-9]|1[0-2])(-\d{2})?$/, 'a month YYYY-MM (or a date, whose month counts)')
  .transform((s) => s.slice(0, 7));
const statementQuery = z.strictObject({
  from: monthOf.describe('First month, YYYY-MM.'),
  to: monthOf.optional().describe('Last month, YYYY-MM; default: from.'),
  affiliate: idParam.optional().describe('An affiliate token gets its own statement whatever this says.'),
  tool: idParam.optional(),
  format: z.enum(['json', 'csv']).default('json'),
}).refine((q) => q.to === undefined || q.to >= q.from, { path: ['to'], message: 'the last month comes before the first (from)' });
const correctionBody = z
  .strictObject({
    sessionId: idParam,
    reason: freeText(500, { lines: true }).min(1, 'say why'),
    void: z.literal(true).optional(),
    useType: idParam.optional(),
    filamentG: z.number().min(0).optional(),
    technicianMin: z.number().int().min(0).optional(),
  })
  .refine((c) => [c.void, c.useType, c.filamentG, c.technicianMin].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one change: void, useType, filamentG or technicianMin',
  });

const minor = z.number().int().describe('Minor units (cents).');
const paybackSchema = z.array(
  z.object({
    toolId: z.string(),
    pooled: z.boolean().describe('The co-owners are repaid: the tool belongs to the pool of shareables.'),
    multiplier: z.string().describe('Each co-owner is repaid up to contribution × multiplier.'),
    coOwners: z.array(z.object({ affiliateId: z.string(), contribution: minor, cap: minor, paid: minor, remaining: minor })),
    paid: minor,
    cap: minor,
    remaining: minor,
    estimatedSessionsToPool: z.number().int().nullable().describe('At the average payback of the sessions charged so far; null before the first.'),
  }),
);

const invoiceSchema = z.object({
  number: z.string(),
  year: z.number().int(),
  seq: z.number().int().describe('Its place in the year: 1, 2, 3… without gaps.'),
  affiliateId: z.string(),
  period: z.string(),
  eventId: z.number().int().describe('The billing.invoice event in the journal.'),
  issuedAt: z.string(),
  currency: z.string(),
  subtotal: minor,
  taxes: z.array(z.object({ id: z.string(), name: z.string(), rate: z.string(), registration: z.string().nullable(), base: minor, amount: minor })),
  tax: minor,
  total: minor,
});
const paymentSchema = z.object({ eventId: z.number().int(), affiliateId: z.string(), paidOn: z.string(), amount: minor, method: z.enum(PAYMENT_METHODS), reference: z.string(), by: z.string(), recordedAt: z.string() });
const balanceSchema = z.object({ affiliateId: z.string(), invoiced: minor, paid: minor, balance: minor.describe('invoiced − paid: owed by the affiliate (negative: paid ahead).'), currency: z.string(), minorUnit: z.number().int() });
const month = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'a month YYYY-MM');
const paymentBody = z.strictObject({
  affiliateId: idParam,
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a day YYYY-MM-DD').describe('The day it was paid.'),
  amount: z.string().regex(/^\d+(\.\d+)?$/, 'an amount written as text, e.g. "42.50"').describe('In the currency, as text: "42.50".'),
  method: z.enum(PAYMENT_METHODS),
  reference: freeText(100).min(1, 'say which payment it is: cheque number, transfer reference…').describe('Taken once per affiliate: a payment typed in twice is refused (409).'),
});

/** An affiliate token asks for its own only. */
function ownOnly(req: FastifyRequest, affiliateId: string | undefined): string | undefined {
  const own = ownAffiliate(req);
  if (own !== null && affiliateId !== undefined && affiliateId !== own) throw new HttpError(403, 'forbidden', `an affiliate token sees its own invoices, payments and balance only (${own}), not ${affiliateId}'s`);
  return own ?? affiliateId;
}

export const billingRoutes: FastifyPluginAsyncZod<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.get(
    '/api/billing/statement',
    { preHandler: allow('affiliate', 'custodian', 'admin'), schema: { tags: ['billing'], summary: 'Statement for months from…to, per session with fund totals; format=csv for a spreadsheet', querystring: statementQuery } },
    async (req, reply) => {
      const b = billingOf(ctx);
      const q = req.query;
      const to = q.to ?? q.from;
      const st = statement(ctx.journal, { from: q.from, to, affiliate: ownAffiliate(req) ?? q.affiliate, tool: q.tool });
      if (q.format === 'csv') return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="statement-${q.from}-${to}.csv"`).send(statementCsv(st, b.cfg.currency, b.cfg.minorUnit));
      return statementDocument(st, b);
    },
  );

  app.get(
    '/api/billing/export',
    {
      preHandler: allow('custodian', 'admin'),
      schema: {
        tags: ['billing'],
        summary: "The journal's money as a Beancount file (double entry: charges, corrections, invoices with their taxes, payments), months from…to; check it with bean-check",
        querystring: z
          .strictObject({
            format: z.enum(['beancount']).default('beancount'),
            from: monthOf.optional().describe('First month, YYYY-MM; earlier money comes in as opening balances. Default: the first.'),
            to: monthOf.optional().describe('Last month, YYYY-MM. Default: the last.'),
          })
          .refine((q) => q.from === undefined || q.to === undefined || q.to >= q.from, { path: ['to'], message: 'the last month comes before the first (from)' }),
      },
    },
    async (req, reply) => {
      const { from, to } = req.query;
      const name = `lab${from ? `-${from}` : ''}${to ? `-${to}` : ''}.beancount`;
      return reply.type('text/plain; charset=utf-8').header('content-disposition', `attachment; filename="${name}"`).send(billingOf(ctx).exportBeancount({ from, to }));
    },
  );

  app.get('/api/billing/payback', { schema: { tags: ['billing'], summary: "Co-owners' payback progress per co-financed tool", response: { 200: paybackSchema } } }, async () => billingOf(ctx).payback());

  app.post(
    '/api/billing/corrections',
    { preHandler: allow('custodian', 'admin'), schema: { tags: ['billing'], summary: "Correct a session's charge: a new event that references it; nothing is edited", body: correctionBody } },
    async (req, reply) => {
      const c = req.body;
      const change: CorrectionChange = c.void
        ? { kind: 'void' }
        : c.useType
          ? { kind: 'use-type', useType: c.useType }
          : c.filamentG !== undefined
            ? { kind: 'material', filamentG: c.filamentG }
            : { kind: 'technician', technicianMin: c.technicianMin! };
      return reply.code(201).send(billingOf(ctx).correct(c.sessionId, change, c.reason, actor(req)));
    },
  );

  app.get(
    '/api/billing/invoices',
    { preHandler: allow('affiliate', 'custodian', 'admin'), schema: { tags: ['billing'], summary: 'Invoices in number order, of a month or an affiliate (an affiliate token: its own)', querystring: z.strictObject({ month: month.optional(), affiliate: idParam.optional() }), response: { 200: z.array(invoiceSchema) } } },
    async (req) => billingOf(ctx).invoices({ period: req.query.month, affiliate: ownOnly(req, req.query.affiliate) }),
  );

  app.get(
    '/api/billing/invoices/:month/:affiliate',
    {
      preHandler: allow('affiliate', 'custodian', 'admin'),
      schema: {
        tags: ['billing'],
        summary: "An affiliate's month: the invoice once the month is closed (with its number), the statement so far before; PDF, or JSON with format=json",
        params: z.object({ month, affiliate: idParam }),
        querystring: z.strictObject({ lang: z.enum(['en', 'fr']).optional().describe("Default: the affiliate's (billing.documents)."), format: z.enum(['pdf', 'json']).default('pdf') }),
      },
    },
    async (req, reply) => {
      const b = billingOf(ctx);
      const affiliate = ownOnly(req, req.params.affiliate)!;
      if (!ctx.access.get(affiliate)) throw new HttpError(404, 'unknown-affiliate', `no affiliate "${affiliate}"`);
      const m = b.month(affiliate, req.params.month, req.query.lang);
      if (req.query.format === 'json') return { ...m, lab: { name: m.lab.name, address: m.lab.address } }; // not the logo's path on the gateway
      return reply.type('application/pdf').header('content-disposition', `attachment; filename="${pdfName(m)}"`).send(await renderPdf(m));
    },
  );

  app.post(
    '/api/billing/payments',
    { preHandler: allow('custodian', 'admin'), schema: { tags: ['billing'], summary: "Record a payment an affiliate made; the same reference twice for one affiliate is refused (409)", body: paymentBody, response: { 201: paymentSchema } } },
    async (req, reply) => {
      const p = req.body;
      try {
        return reply.code(201).send(billingOf(ctx).recordPayment({ affiliateId: p.affiliateId, paidOn: p.date, amount: p.amount, method: p.method, reference: p.reference, by: actor(req) }, new Date()));
      } catch (err) {
        if (err instanceof DuplicatePaymentError) throw new HttpError(409, 'conflict', err.message);
        throw err;
      }
    },
  );

  app.get(
    '/api/billing/payments',
    { preHandler: allow('affiliate', 'custodian', 'admin'), schema: { tags: ['billing'], summary: 'Payments in date order (an affiliate token: its own)', querystring: z.strictObject({ affiliate: idParam.optional() }), response: { 200: z.array(paymentSchema) } } },
    async (req) => billingOf(ctx).payments({ affiliate: ownOnly(req, req.query.affiliate) }),
  );

  app.get(
    '/api/billing/balances',
    { preHandler: allow('affiliate', 'custodian', 'admin'), schema: { tags: ['billing'], summary: 'Invoiced, paid and the balance per affiliate (an affiliate token: its own)', querystring: z.strictObject({ affiliate: idParam.optional() }), response: { 200: z.array(balanceSchema) } } },
    async (req) => {
      const b = billingOf(ctx);
      return b.balances(ownOnly(req, req.query.affiliate)).map((x) => ({ ...x, currency: b.cfg.currency, minorUnit: b.cfg.minorUnit }));
    },
  );

  app.post(
    '/api/billing/periods/:period/close',
    {
      preHandler: allow('custodian', 'admin'),
      schema: { tags: ['billing'], summary: 'Close a month: later corrections to its sessions land in the next open month', params: z.object({ period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'a month YYYY-MM').describe('YYYY-MM, a month that has ended') }), body: z.strictObject({}).nullish() },
    },
    async (req) => {
      const b = billingOf(ctx);
      const issued = b.closePeriod(req.params.period, actor(req), new Date());
      return { closedPeriods: b.closedPeriods(), invoices: issued.map((i) => ({ number: i.number, affiliateId: i.affiliateId, total: i.total })) };
    },
  );
};
