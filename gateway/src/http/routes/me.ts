/** Who the token is. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ROLES } from '../tokens.js';
import type { AppContext } from '../context.js';

export const meSchema = z.object({ role: z.enum(ROLES), affiliateId: z.string().nullable(), name: z.string().nullable(), affiliateName: z.string().nullable().describe("The affiliate's name, for an affiliate token."), gateway: z.string() });

export const meRoutes: FastifyPluginAsyncZod<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.get('/api/me', { schema: { tags: ['auth'], summary: "The token's role, affiliate and name", response: { 200: meSchema } } }, async (req) => ({
    role: req.auth!.role,
    affiliateId: req.auth!.affiliateId,
    name: req.auth!.name,
    affiliateName: req.auth!.affiliateId === null ? null : (ctx.access.get(req.auth!.affiliateId)?.name ?? null),
    gateway: ctx.name,
  }));
};
