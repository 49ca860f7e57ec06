/** Affiliates and their qualifications, for the custodian. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { affiliateSchema } from '../../access/store.js';
import type { Affiliate } from '../../access/decide.js';
import { allow } from '../auth.js';
import { toolOf, type AppContext } from '../context.js';
import { HttpError } from '../errors.js';

const params = z.object({ id: z.string() });

export const affiliateRoutes: FastifyPluginAsyncZod<{ ctx: AppContext }> = async (app, { ctx }) => {
  const access = ctx.access;
  app.addHook('preHandler', allow('custodian', 'admin'));
  const withQualifications = (affiliates: Affiliate[]) => {
    const q = access.qualifications();
    return affiliates.map((a) => ({ ...a, qualifications: q.filter((x) => x.affiliateId === a.id).map(({ toolId, expiresAt }) => ({ toolId, expiresAt })) }));
  };
  const one = (id: string) => {
    const a = access.get(id);
    if (!a) throw new HttpError(404, 'unknown-affiliate', `no affiliate "${id}"`);
    return withQualifications([a])[0]!;
  };

  app.get('/api/affiliates', { schema: { tags: ['affiliates'], summary: 'Affiliates with badges and qualifications' } }, async () => withQualifications(access.list()));
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

  app.post(
    '/api/affiliates/:id/qualifications',
    { schema: { tags: ['affiliates'], summary: 'Qualify an affiliate on a tool', params, body: z.strictObject({ toolId: z.string().min(1), expires: z.iso.date().or(z.iso.datetime()).nullable().default(null) }) } },
    async (req, reply) => {
      one(req.params.id);
      toolOf(ctx, req.body.toolId);
      access.qualify(req.params.id, req.body.toolId, req.body.expires);
      return reply.code(201).send(one(req.params.id));
    },
  );

  // The allow-list keeps qualifications with an expiry: withdrawing one makes it expire now (journaled like any change).
  app.delete('/api/affiliates/:id/qualifications/:toolId', { schema: { tags: ['affiliates'], summary: 'Withdraw a qualification (it expires now)', params: z.object({ id: z.string(), toolId: z.string() }) } }, async (req) => {
    const a = one(req.params.id);
    const q = a.qualifications.find((x) => x.toolId === req.params.toolId);
    if (!q || (q.expiresAt !== null && q.expiresAt <= new Date().toISOString())) throw new HttpError(404, 'not-qualified', `${a.id} holds no current qualification on "${req.params.toolId}"`);
    access.qualify(a.id, req.params.toolId, new Date().toISOString());
    return one(a.id);
  });
};
