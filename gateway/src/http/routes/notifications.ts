/**
 * A person's notification choices: the channels of their role they are told on, the kinds they
 * turned off (never a critical one) and their quiet hours; with their e-mail address as the
 * allow-list has it. Their own with an affiliate token; anyone's for staff to read, for an
 * admin to change.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { PreferencesError, PreferencesStore, preferencesSchema } from '../../notify/preferences.js';
import { OPTIONAL_KINDS } from '../../notify/rules.js';
import { actor } from '../auth.js';
import type { AppContext } from '../context.js';
import { HttpError } from '../errors.js';
import { idParam } from '../fields.js';

const params = z.object({ id: idParam });

export const notificationChoicesSchema = z.object({
  affiliateId: z.string(),
  email: z.string().nullable().describe('Where their e-mail goes (the allow-list); null: none, so no e-mail.'),
  available: z.array(z.string()).describe("The channels of the affiliate role (notifications.recipients.affiliate); empty when notifications are off."),
  kinds: z.array(z.string()).describe('The kinds this lab sends affiliates, which each may turn off.'),
  channels: z.array(z.string()).nullable().describe('The channels chosen; null: every one available.'),
  optOut: z.array(z.string()),
  quietHours: z.string().nullable(),
});

export const notificationRoutes: FastifyPluginAsyncZod<{ ctx: AppContext }> = async (app, { ctx }) => {
  const store = new PreferencesStore(ctx.journal);
  const available = () => ctx.notifier?.affiliateChannels() ?? [];
  /** Their own, or staff; `change`: their own, or an admin. */
  const mayAccess = (req: FastifyRequest, id: string, change: boolean) => {
    const auth = req.auth!;
    if (auth.role === 'affiliate' ? auth.affiliateId === id : change ? auth.role === 'admin' : true) return;
    throw new HttpError(403, 'forbidden', change ? `only ${id} (their own token) or an admin may change ${id}'s notifications` : `an affiliate token reads only its own notifications`);
  };
  const view = (id: string) => {
    const a = ctx.access.get(id);
    if (!a) throw new HttpError(404, 'unknown-affiliate', `no affiliate "${id}"`);
    return { affiliateId: id, email: a.email ?? null, available: available(), kinds: ctx.notifier?.affiliateKinds() ?? [...OPTIONAL_KINDS], ...store.get(id) };
  };

  app.get('/api/affiliates/:id/notifications', { schema: { tags: ['notifications'], summary: "A person's notification choices and e-mail address", params, response: { 200: notificationChoicesSchema } } }, async (req) => {
    mayAccess(req, req.params.id, false);
    return view(req.params.id);
  });

  app.put(
    '/api/affiliates/:id/notifications',
    { schema: { tags: ['notifications'], summary: "Replaces a person's notification choices (their own token, or an admin)", params, body: preferencesSchema, response: { 200: notificationChoicesSchema } } },
    async (req) => {
      mayAccess(req, req.params.id, true);
      view(req.params.id);
      try {
        store.put(req.params.id, req.body, actor(req), ctx.notifier ? available() : null);
      } catch (err) {
        if (err instanceof PreferencesError) throw new HttpError(400, 'unknown-channel', err.message);
        throw err;
      }
      return view(req.params.id);
    },
  );
};
