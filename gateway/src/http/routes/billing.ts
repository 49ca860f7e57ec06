/** Billing: statements, co-owner payback, corrections and closing months. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { CorrectionChange } from '../../billing/billing.js';
import { statementCsv, statementDocument } from '../../billing/render.js';
import { statement } from '../../billing/statement.js';
import { actor, allow, ownAffiliate } from '../auth.js';
import { billingOf, type AppContext } from '../context.js';
import { freeText } from '../../config/common.js';
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

  app.post(
    '/api/billing/periods/:period/close',
    {
      preHandler: allow('custodian', 'admin'),
      schema: { tags: ['billing'], summary: 'Close a month: later corrections to its sessions land in the next open month', params: z.object({ period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'a month YYYY-MM').describe('YYYY-MM, a month that has ended') }), body: z.strictObject({}).nullish() },
    },
    async (req) => {
      const b = billingOf(ctx);
      b.closePeriod(req.params.period, actor(req), new Date());
      return { closedPeriods: b.closedPeriods() };
    },
  );
};
