/** Devices: health (state, telemetry, faults, counters); print jobs and fault clearing for maintainers. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { Printer } from '../../devices/printer/driver.js';
import { actor, allow, ownAffiliate } from '../auth.js';
import { deviceOf, type AppContext } from '../context.js';
import { HttpError } from '../errors.js';
import { freeText } from '../../config/common.js';
import { idParam } from '../fields.js';
import { withArticle } from '../../words.js';
import { Readable } from 'node:stream';
import { staffOwner } from '../../print-jobs/queue.js';


const params = z.object({ id: idParam.describe('Device id, as in the config.') });
const maintainers = allow('maintainer', 'admin');

export const deviceRoutes: FastifyPluginAsyncZod<{ ctx: AppContext }> = async (app, { ctx }) => {
  const printer = (id: string) => {
    const d = deviceOf(ctx, id);
    if (!(d instanceof Printer)) throw new HttpError(400, 'not-a-printer', `device "${id}" is ${withArticle(d.kind)}, not a printer`);
    return d;
  };

  app.get('/api/devices', { schema: { tags: ['devices'], summary: "Every device's health (an affiliate: id and state only)" } }, async (req) => {
    const all = [...ctx.devices.values()].map((d) => d.health());
    return ownAffiliate(req) === null ? all : all.map((h) => ({ id: h.id, state: h.state }));
  });
  app.get('/api/devices/:id', { preHandler: allow('custodian', 'maintainer', 'admin'), schema: { tags: ['devices'], params } }, async (req) => deviceOf(ctx, req.params.id).health());

  app.post(
    '/api/devices/:id/jobs',
    { preHandler: maintainers, schema: { tags: ['devices'], summary: 'Print a G-code file (the request body) in print-host mode: at once (201) under the session open at its tool, or, with none open, queued (202) to run under a session of its own for the sender', params, querystring: z.object({ name: freeText(200).optional() }) } },
    async (req, reply) => {
      const p = printer(req.params.id);
      if (typeof req.body !== 'string' || req.body.length === 0) {
        throw new HttpError(400, 'no-gcode', 'send the G-code file as the request body (Content-Type: text/plain or application/octet-stream)');
      }
      const name = req.query.name ?? 'upload.gcode';
      // At a tool, no job runs without a session: with none open, the job waits in the tool's
      // queue and opens one attributed to whoever sent it (printJobs.staffUseType).
      const tool = [...ctx.tools.values()].find((t) => t.cfg.printer === req.params.id);
      if (tool && ctx.printQueue && !tool.current()) {
        const owner = staffOwner(req.auth!);
        const job = await ctx.printQueue.upload(tool.cfg.id, owner, name, Readable.from([Buffer.from(req.body)]), { declaredBytes: Buffer.byteLength(req.body) });
        const queued = ctx.printQueue.enqueue(job.id, actor(req));
        return reply.code(202).send({ id: null, file: queued.file, state: 'queued', progress: 0, filamentMm: 0, filamentG: 0, printJob: queued });
      }
      return reply.code(201).send(p.startJob(name, req.body));
    },
  );
  app.put(
    '/api/devices/:id/files/:name',
    {
      preHandler: allow('custodian', 'maintainer', 'admin'),
      schema: {
        tags: ['devices'],
        summary:
          "Give the gateway a G-code file (the request body) that is, or will be, on the printer's SD card: a print of it from the card is then metered exactly; one that ended metered otherwise is metered again, and the session that held it corrected",
        params: params.extend({ name: z.string().min(1).max(255).refine((n) => !/[/\\]/.test(n) && ![...n].some((c) => c < ' '), 'a file name without slashes or control characters').describe('The file name on the card (its long name).') }),
      },
    },
    async (req) => {
      const p = printer(req.params.id);
      if (typeof req.body !== 'string' || req.body.length === 0) {
        throw new HttpError(400, 'no-gcode', 'send the G-code file as the request body (Content-Type: text/plain or application/octet-stream)');
      }
      const held = p.holdFile(req.params.name, req.body);
      // a print of it that ended metered otherwise: the session that held it is billed from the file now
      const tool = [...ctx.tools.values()].find((t) => t.cfg.printer === req.params.id);
      const metered = held.metered.map((job) => {
        const open = tool?.current();
        // a session still open that held the print: given again once it has ended, the file corrects it
        if (open && open.startedAt <= job.endedAt) return { ...job, sessionId: open.sessionId, correction: null, skipped: `session ${open.sessionId} is still open: give the file again once it has ended` };
        const sessions = !tool || !ctx.billing ? { sessionId: null, correction: null, skipped: 'the printer is not at a billed tool' } : ctx.billing.meterFromFile(tool.cfg.id, job, actor(req));
        p.jobMetered(job);
        return { ...job, ...sessions };
      });
      return { ...held, metered };
    },
  );
  for (const action of ['pause', 'resume', 'cancel'] as const) {
    app.post(`/api/devices/:id/jobs/current/${action}`, { preHandler: maintainers, schema: { tags: ['devices'], params } }, async (req) => {
      const p = printer(req.params.id);
      p[action]();
      return p.currentJob ?? p.finishedJob;
    });
  }
  app.post('/api/devices/:id/fault/clear', { preHandler: maintainers, schema: { tags: ['devices'], summary: "Clear a printer's fault (sends M999)", params } }, async (req) => {
    const p = printer(req.params.id);
    p.clearFault();
    return p.health();
  });
};
