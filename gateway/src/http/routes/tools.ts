/** Tools: their status, devices and open session; a maintainer blocks, releases or stops them. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { setToolStatus } from '../../sessions/projection.js';
import { actor, allow, ownAffiliate } from '../auth.js';
import { toolOf, type AppContext } from '../context.js';
import { HttpError } from '../errors.js';
import { freeText } from '../../config/common.js';
import { idParam } from '../fields.js';
import { toolView, toolViewSchema } from '../views.js';

const params = z.object({ id: idParam.describe('Tool id, as in the config.') });

export const toolRoutes: FastifyPluginAsyncZod<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.get('/api/tools', { schema: { tags: ['tools'], summary: 'Every tool with its status, devices and open session', response: { 200: z.array(toolViewSchema) } } }, async (req) =>
    [...ctx.tools.values()].map((t) => toolView(ctx, t, ownAffiliate(req))),
  );
  app.get('/api/tools/:id', { schema: { tags: ['tools'], params, response: { 200: toolViewSchema } } }, async (req) => toolView(ctx, toolOf(ctx, req.params.id), ownAffiliate(req)));

  app.post(
    '/api/tools/:id/status',
    {
      preHandler: allow('maintainer', 'admin'),
      schema: {
        tags: ['maintenance'],
        summary: 'Block a tool, take it into maintenance or make it available (a running session goes on)',
        params,
        body: z.strictObject({ status: z.enum(['available', 'blocked', 'maintenance']), reason: freeText(200).optional() }),
        response: { 200: toolViewSchema },
      },
    },
    async (req) => {
      const t = toolOf(ctx, req.params.id);
      setToolStatus(ctx.journal, t.cfg.id, req.body.status, req.body.reason ?? null, actor(req));
      return toolView(ctx, t, null);
    },
  );

  app.post(
    '/api/tools/:id/session/stop',
    { preHandler: allow('maintainer', 'admin'), schema: { tags: ['maintenance'], summary: 'End the running session now and switch off, busy or not', params, body: z.strictObject({}).nullish() } },
    async (req) => toolOf(ctx, req.params.id).forceStop(actor(req)),
  );

  app.put(
    '/api/tools/:id/session/use-type',
    { schema: { tags: ['tools'], summary: "Change the running session's use type (an affiliate: their own session, to a self-service use type)", params, body: z.strictObject({ useType: idParam }) } },
    async (req) => {
      const t = toolOf(ctx, req.params.id);
      const own = ownAffiliate(req);
      if (own !== null && t.current()?.affiliateId !== own) throw new HttpError(403, 'forbidden', `an affiliate may change the use type of their own session only; the session at "${t.cfg.id}" is not yours`);
      const chosen = ctx.useTypes.find((u) => u.id === req.body.useType);
      if (own !== null && chosen && !chosen.selfService) {
        const open = ctx.useTypes.filter((u) => u.selfService).map((u) => u.id);
        throw new HttpError(403, 'not-self-service', `"${chosen.id}" use is a custodian's decision: ask one to change your session to it${open.length ? ` (you may choose ${open.join(', ')})` : ''}`);
      }
      return t.setUseType(req.body.useType, actor(req));
    },
  );
};
