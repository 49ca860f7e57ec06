/**
 * Print jobs sent from slicers (or the maintainers' print-host endpoint), in the gateway's own
 * API: the queue of each printer tool with the quotes, for the affiliate (their own) and the
 * staff (everyone's); removing a job and queuing a kept file. Slicers use /octoprint/<tool>/.
 */
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PrintJob, PrintQueue } from '../../print-jobs/queue.js';
import { actor, ownAffiliate } from '../auth.js';
import type { AppContext } from '../context.js';
import { HttpError } from '../errors.js';
import { idParam } from '../fields.js';

const params = z.object({ id: z.uuid().describe('The print job id.') });

export const printJobRoutes: FastifyPluginAsyncZod<{ ctx: AppContext; queue: PrintQueue }> = async (app, { ctx, queue }) => {
  const printerTools = () => [...ctx.tools.values()].filter((t) => t.cfg.printer !== undefined).map((t) => t.cfg.id);
  const find = (req: FastifyRequest, id: string): PrintJob => {
    const job = queue.get(id);
    const own = ownAffiliate(req);
    if (!job || (own !== null && (job.staff || job.owner !== own))) throw new HttpError(404, 'not-found', `no print job ${id} of yours`);
    return job;
  };
  /** The caller may change this job: its owner, a maintainer or an admin. */
  const mayChange = (role: string, own: string | null, job: PrintJob) => {
    if (role === 'maintainer' || role === 'admin') return;
    if (role === 'affiliate' && !job.staff && job.owner === own) return;
    throw new HttpError(403, 'forbidden', `${job.file} is ${job.owner}'s job: only they, a maintainer or an admin may change it`);
  };

  app.get(
    '/api/print-jobs',
    {
      schema: {
        tags: ['print-jobs'],
        summary: "Print jobs of the printer tools whose file is kept, or that wait or print, oldest first, each with its quote (an affiliate: their own)",
        querystring: z.object({ tool: idParam.optional().describe('Only this tool.') }),
      },
    },
    async (req) => {
      const tools = req.query.tool === undefined ? printerTools() : [req.query.tool];
      if (req.query.tool !== undefined && !printerTools().includes(req.query.tool)) throw new HttpError(404, 'unknown-tool', `no printer tool "${req.query.tool}" (known: ${printerTools().join(', ') || 'none'})`);
      const own = ownAffiliate(req);
      return tools.flatMap((t) => queue.list(t, own));
    },
  );
  app.get('/api/print-jobs/:id', { schema: { tags: ['print-jobs'], summary: 'A print job with its quote, and once it ran the grams metered', params } }, async (req) => {
    return find(req, req.params.id);
  });
  app.delete('/api/print-jobs/:id', { schema: { tags: ['print-jobs'], summary: 'Removes a queued job or a kept file (its owner, a maintainer or an admin); 409 while it prints', params } }, async (req) => {
    const job = find(req, req.params.id);
    mayChange(req.auth!.role, ownAffiliate(req), job);
    return queue.remove(job.id, actor(req));
  });
  app.post(
    '/api/print-jobs/:id/confirm',
    { schema: { tags: ['print-jobs'], summary: "Its owner confirms a quote above the tariff's confirmAbove: their badge may then release the job", params } },
    async (req) => {
      const job = find(req, req.params.id);
      if (req.auth!.role !== 'affiliate' || job.staff || job.owner !== req.auth!.affiliateId) throw new HttpError(403, 'forbidden', `only ${job.owner} may confirm the quote of their job`);
      return queue.confirm(job.id, actor(req));
    },
  );
  app.post('/api/print-jobs/:id/queue', { schema: { tags: ['print-jobs'], summary: "Queues a kept file: it prints once its owner's session at the tool releases it", params } }, async (req) => {
    const job = find(req, req.params.id);
    mayChange(req.auth!.role, ownAffiliate(req), job);
    return queue.enqueue(job.id, actor(req));
  });
};
