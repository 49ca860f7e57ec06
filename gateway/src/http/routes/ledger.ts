/** The ledger outbox: backlog, age, dead letters and putting them back. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { allow } from '../auth.js';
import { ledgerOf, type AppContext } from '../context.js';
import { HttpError } from '../errors.js';

export const ledgerRoutes: FastifyPluginAsyncZod<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.addHook('preHandler', allow('custodian', 'maintainer', 'admin'));
  app.get('/api/ledger', { schema: { tags: ['ledger'], summary: 'Outbox backlog, oldest pending age, last delivery, dead letters' } }, async () => ledgerOf(ctx).health());
  app.get('/api/ledger/dead-letters', { schema: { tags: ['ledger'], summary: 'Records the ledger refused, for a person to review' } }, async () => ledgerOf(ctx).outbox.deadLetters());
  app.post('/api/ledger/dead-letters/retry', { schema: { tags: ['ledger'], summary: 'Put every dead letter back in its queue, once the cause is fixed' } }, async () => {
    const d = ledgerOf(ctx);
    const retried = d.outbox.retryAllDead();
    d.kick();
    return { retried };
  });
  app.post('/api/ledger/dead-letters/:seq/retry', { schema: { tags: ['ledger'], params: z.object({ seq: z.coerce.number().int().min(1) }) } }, async (req) => {
    const d = ledgerOf(ctx);
    let row;
    try {
      row = d.outbox.retryDead(req.params.seq);
    } catch (err) {
      throw new HttpError(404, 'unknown-dead-letter', (err as Error).message);
    }
    d.kick();
    return row;
  });
};
