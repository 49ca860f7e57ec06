/** Sessions: the running ones with their cost so far, and the ended ones with their charge. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { formatMinor } from '../../../../ledger-client/src/money.js';
import { ownAffiliate } from '../auth.js';
import type { AppContext } from '../context.js';
import { idParam } from '../fields.js';
import { liveSession, liveSessionSchema } from '../views.js';

const isoTime = z.union([z.iso.datetime({ offset: true }), z.iso.date()], { error: 'a date (YYYY-MM-DD) or an ISO 8601 date-time' }).transform((s) => new Date(s).toISOString());
const query = z.strictObject({
  tool: idParam.optional(),
  affiliate: idParam.optional().describe('An affiliate token sees its own sessions whatever this says.'),
  useType: idParam.optional(),
  from: isoTime.optional().describe('Sessions that ended at or after this time (open ones: still running).'),
  to: isoTime.optional().describe('Sessions that started before this time.'),
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
});

const charge = z.object({ total: z.string(), currency: z.string() }).nullable().describe('The charge with every correction; null when not billed.');

export const sessionRoutes: FastifyPluginAsyncZod<{ ctx: AppContext }> = async (app, { ctx }) => {
  const db = ctx.journal.db;
  const ended = db.prepare(
    `SELECT data FROM events WHERE kind = 'session.ended'
       AND (@tool IS NULL OR device_id = @tool)
       AND (@affiliate IS NULL OR json_extract(data, '$.affiliateId') = @affiliate)
       AND (@useType IS NULL OR json_extract(data, '$.useType') = @useType)
       AND (@from IS NULL OR json_extract(data, '$.endedAt') >= @from)
       AND (@to IS NULL OR json_extract(data, '$.startedAt') < @to)
     ORDER BY id DESC LIMIT @limit`,
  ).pluck();
  const charged = db.prepare('SELECT SUM(total) FROM charges WHERE session_id = ?').pluck();
  const chargeOf = (sessionId: string) => {
    const total = ctx.billing && (charged.get(sessionId) as number | null);
    return ctx.billing && total !== null ? { total: formatMinor(total, ctx.billing.cfg.minorUnit), currency: ctx.billing.cfg.currency } : null;
  };
  const live = (affiliate: string | null) =>
    [...ctx.tools.values()]
      .map((t) => t.current())
      .filter((u) => u !== null && (affiliate === null || u.affiliateId === affiliate))
      .map((u) => u!);

  app.get('/api/sessions/live', { schema: { tags: ['sessions'], summary: 'Running sessions with time, meters and cost so far (an affiliate: their own)', response: { 200: z.array(liveSessionSchema) } } }, async (req) =>
    live(ownAffiliate(req)).map((u) => liveSession(ctx.billing, u)),
  );

  app.get(
    '/api/sessions',
    { schema: { tags: ['sessions'], summary: 'Running sessions, then ended ones newest first, each with its charge', querystring: query, response: { 200: z.array(z.looseObject({ sessionId: z.string(), charge })) } } },
    async (req) => {
      const q = { ...req.query, affiliate: ownAffiliate(req) ?? req.query.affiliate };
      const running = q.from === undefined ? live(q.affiliate ?? null).filter((u) => (q.tool === undefined || u.toolId === q.tool) && (q.useType === undefined || u.useType === q.useType) && (q.to === undefined || u.startedAt < q.to)) : [];
      const rows = ended.all({ tool: q.tool ?? null, affiliate: q.affiliate ?? null, useType: q.useType ?? null, from: q.from ?? null, to: q.to ?? null, limit: q.limit }) as string[];
      const done = rows.map((d) => JSON.parse(d) as { sessionId: string });
      return [...running.map((u) => ({ ...u, charge: null })), ...done.map((s) => ({ ...s, charge: chargeOf(s.sessionId) }))].slice(0, q.limit);
    },
  );
};
