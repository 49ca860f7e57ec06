/** Maintenance: run hours and due services per tool, logging a service, the log. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actor, allow } from '../auth.js';
import { toolOf, type AppContext } from '../context.js';
import { Maintenance } from '../maintenance.js';
import { freeText } from '../../config/common.js';
import { idParam } from '../fields.js';

const state = z.object({
  toolId: z.string(),
  runHours: z.number().describe('Active hours since the last service that reset the counter.'),
  serviceEveryH: z.number().nullable().describe('tools[].serviceEveryH in the config; null: no schedule.'),
  dueInH: z.number().nullable().describe('Run hours left before the next service; negative: overdue.'),
  due: z.boolean(),
  lastService: z.object({ at: z.string(), by: z.string(), note: z.string() }).nullable(),
});

export const maintenanceRoutes: FastifyPluginAsyncZod<{ ctx: AppContext }> = async (app, { ctx }) => {
  const m = new Maintenance(ctx.journal);
  app.addHook('preHandler', allow('maintainer', 'admin'));

  app.get('/api/maintenance', { schema: { tags: ['maintenance'], summary: 'Run hours and maintenance-due state per tool', response: { 200: z.array(state) } } }, async () => [...ctx.tools.values()].map((t) => m.state(t)));
  app.post(
    '/api/maintenance/:tool/service',
    {
      schema: {
        tags: ['maintenance'],
        summary: 'Log a service; resetRunHours starts the run-hour count again',
        params: z.object({ tool: idParam }),
        body: z.strictObject({ note: freeText(1000, { lines: true }).min(1, 'say what was done'), resetRunHours: z.boolean().default(false) }),
        response: { 201: state },
      },
    },
    async (req, reply) => reply.code(201).send(m.service(toolOf(ctx, req.params.tool), req.body.note, actor(req), req.body.resetRunHours)),
  );
  app.get(
    '/api/maintenance/log',
    { schema: { tags: ['maintenance'], summary: 'Services and status changes, newest first', querystring: z.strictObject({ tool: idParam.optional(), limit: z.coerce.number().int().min(1).max(1000).default(200) }) } },
    async (req) => {
      if (req.query.tool !== undefined) toolOf(ctx, req.query.tool);
      return m.log(req.query.tool, req.query.limit);
    },
  );
};
