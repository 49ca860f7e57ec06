/**
 * Affiliates and their qualifications, for the custodian. A qualification has one shape in
 * and out: `{ tool, expires }`, as in the config and the CSV import; what is read back gives
 * `expires` as the instant it ends (a date alone ends with its day, UTC).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { affiliateSchema, qualification } from '../../access/store.js';
import type { Affiliate } from '../../access/decide.js';
import { allow } from '../auth.js';
import { toolOf, type AppContext } from '../context.js';
import { HttpError } from '../errors.js';
import { idParam } from '../fields.js';

const params = z.object({ id: idParam });

export const affiliateRoutes: FastifyPluginAsyncZod<{ ctx: AppContext }> = async (app, { ctx }) => {
  const access = ctx.access;
  app.addHook('preHandler', allow('custodian', 'admin'));
  /** Each affiliate with their qualifications, in one pass over each list. */
  const withQualifications = (affiliates: Affiliate[]) => {
    const byAffiliate = new Map<string, { tool: string; expires: string | null }[]>();
    for (const q of access.qualifications()) {
      const own = byAffiliate.get(q.affiliateId);
      const shown = { tool: q.toolId, expires: q.expiresAt };
      if (own) own.push(shown);
      else byAffiliate.set(q.affiliateId, [shown]);
    }
    return affiliates.map((a) => ({ ...a, qualifications: byAffiliate.get(a.id) ?? [] }));
  };
  const one = (id: string) => {
    const a = access.get(id);
    if (!a) throw new HttpError(404, 'unknown-affiliate', `no affiliate "${id}"`);
    return withQualifications([a])[0]!;
  };

  app.get('/api/affiliates', { schema: { tags: ['affiliates'], summary: 'Affiliates with badges and qualifications ({ tool, expires })' } }, async () => withQualifications(access.list()));
  app.get('/api/affiliates/:id', { schema: { tags: ['affiliates'], params } }, async (req) => one(req.params.id));

  app.put(
    '/api/affiliates/:id',
    { schema: { tags: ['affiliates'], summary: 'Add or replace an affiliate (name, status, badges, qualifications, use type)', params, body: affiliateSchema.omit({ id: true }) } },
    async (req) => {
      try {
        access.put({ ...req.body, id: req.params.id });
      } catch (err) {
        if (err instanceof z.ZodError) throw err;
        throw new HttpError(409, 'conflict', (err as Error).message);
      }
      return one(req.params.id);
    },
  );

  app.post('/api/affiliates/:id/qualifications', { schema: { tags: ['affiliates'], summary: 'Qualify an affiliate on a tool', params, body: qualification } }, async (req, reply) => {
    one(req.params.id);
    toolOf(ctx, req.body.tool);
    access.qualify(req.params.id, req.body.tool, req.body.expires);
    return reply.code(201).send(one(req.params.id));
  });

  // The allow-list keeps qualifications with an expiry: withdrawing one makes it expire now (journaled like any change).
  app.delete('/api/affiliates/:id/qualifications/:tool', { schema: { tags: ['affiliates'], summary: 'Withdraw a qualification (it expires now)', params: z.object({ id: idParam, tool: idParam }) } }, async (req) => {
    const a = one(req.params.id);
    const q = a.qualifications.find((x) => x.tool === req.params.tool);
    if (!q || (q.expires !== null && q.expires <= new Date().toISOString())) throw new HttpError(404, 'not-qualified', `${a.id} holds no current qualification on "${req.params.tool}"`);
    access.qualify(a.id, req.params.tool, new Date().toISOString());
    return one(a.id);
  });
};
