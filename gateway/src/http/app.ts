/**
 * The HTTP API as a fastify app built by a function; the composition root listens, tests
 * call `app.inject`. Errors have one shape: `{ error, message }`, the message for a person.
 *
 * Until API tokens exist, the API listens on 127.0.0.1 by default: anyone who can reach it
 * can start and cancel prints.
 */
import Fastify, { type FastifyReply } from 'fastify';
import type { Device } from '../devices/device.js';
import { z } from 'zod';
import { Printer, PrinterRefusal } from '../devices/printer/driver.js';
import { setToolStatus } from '../sessions/projection.js';
import type { Billing } from '../billing/billing.js';
import type { OutboxDrain } from '../ledger/outbox.js';
import type { UpstreamBridge } from '../mqtt/bridge.js';
import { BillingError } from '../billing/money.js';
import { statementCsv } from '../billing/render.js';
import { statement } from '../billing/statement.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { SessionRefusal, type ToolSessions } from '../sessions/tool-sessions.js';
import { VERSION } from '../version.js';

export interface AppContext {
  billing: Billing | null;
  /** The ledger outbox's delivery, when a ledger is configured. */
  ledger: OutboxDrain | null;
  /** The bridge to the upstream MQTT broker, when one is configured. */
  bridge: UpstreamBridge | null;
  name: string;
  startedAt: Date;
  devices: ReadonlyMap<string, Device>;
  tools: ReadonlyMap<string, ToolSessions>;
  journal: Journal;
}

const who = z.string().min(1).max(64).optional().describe('Who did it, for the journal.');
const toolStatusBody = z.strictObject({ status: z.enum(['available', 'blocked', 'maintenance']), reason: z.string().max(200).optional(), by: who });
const byBody = z.strictObject({ by: who });
const useTypeBody = z.strictObject({ useType: z.string().min(1), by: who });
const isoTime = z.iso.datetime({ offset: true }).or(z.iso.date()).transform((s) => new Date(s).toISOString());
const sessionQuery = z.strictObject({
  tool: z.string().optional(),
  affiliate: z.string().optional(),
  useType: z.string().optional(),
  from: isoTime.optional().describe('Sessions that ended at or after this time.'),
  to: isoTime.optional().describe('Sessions that started before this time.'),
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
});

const monthOf = z
  .string()
  .regex(/^\d{4}-(0[1-9]|1[0-2])(-\d{2})?$/, 'a month YYYY-MM (or a date, whose month counts)')
  .transform((s) => s.slice(0, 7));
const statementQuery = z.strictObject({
  from: monthOf,
  to: monthOf.optional(),
  affiliate: z.string().optional(),
  tool: z.string().optional(),
  format: z.enum(['json', 'csv']).default('json'),
});
const correctionBody = z
  .strictObject({
    sessionId: z.string().min(1),
    reason: z.string().min(1, 'say why').max(500),
    by: z.string().min(1).max(64),
    void: z.literal(true).optional(),
    useType: z.string().min(1).optional(),
    filamentG: z.number().min(0).optional(),
    technicianMin: z.number().int().min(0).optional(),
  })
  .refine((c) => [c.void, c.useType, c.filamentG, c.technicianMin].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one change: void, useType, filamentG or technicianMin',
  });

/** Largest G-code file accepted for print-host mode. */
const MAX_GCODE_BYTES = 256 * 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function buildApp(ctx: AppContext, log: Logger) {
  // Requests are not logged one by one (a tablet polling health would flood the SD card).
  const app = Fastify({ loggerInstance: log.child({ part: 'http' }, { level: 'warn' }) });
  app.addContentTypeParser(['text/plain', 'application/octet-stream', 'text/x-gcode'], { parseAs: 'string', bodyLimit: MAX_GCODE_BYTES }, (_req, body, done) => done(null, body));

  const device = (id: string) => {
    const d = ctx.devices.get(id);
    if (!d) throw new HttpError(404, 'unknown-device', `no device "${id}" (known: ${[...ctx.devices.keys()].join(', ') || 'none'})`);
    return d;
  };
  const printer = (id: string) => {
    const d = device(id);
    if (!(d instanceof Printer)) throw new HttpError(400, 'not-a-printer', `device "${id}" is a ${d.kind}, not a printer`);
    return d;
  };

  app.get('/api/health', async () => {
    const devices = [...ctx.devices.values()].map((d) => d.health());
    const ledger = ctx.ledger?.health() ?? null;
    return {
      gateway: ctx.name,
      version: VERSION,
      startedAt: ctx.startedAt.toISOString(),
      uptimeS: Math.round((Date.now() - ctx.startedAt.getTime()) / 1000),
      status: devices.every((d) => d.state === 'online') && !ledger?.alarm && !ledger?.deadLetters ? 'ok' : 'degraded',
      devices,
      ledger,
      bridge: ctx.bridge?.health() ?? null,
    };
  });

  const tool = (id: string) => {
    const t = ctx.tools.get(id);
    if (!t) throw new HttpError(404, 'unknown-tool', `no tool "${id}" (known: ${[...ctx.tools.keys()].join(', ') || 'none'})`);
    return t;
  };
  const toolView = (t: ToolSessions) => {
    const { status, reason, by, since, inUse } = t.status();
    const c = t.cfg;
    return {
      id: c.id,
      name: c.name ?? c.id,
      status: status === 'available' && inUse ? 'in-use' : status,
      statusReason: reason,
      statusBy: by,
      statusSince: since,
      devices: { node: c.node ?? null, switch: c.switch ?? c.node ?? null, printer: c.printer ?? null, readers: c.readers },
      session: t.current(),
      badges: t.stats,
    };
  };
  const body = <T>(schema: z.ZodType<T>, value: unknown): T => {
    const r = schema.safeParse(value ?? {});
    if (!r.success) throw new HttpError(400, 'bad-request', r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
    return r.data;
  };

  app.get('/api/tools', async () => [...ctx.tools.values()].map(toolView));
  app.get<{ Params: { id: string } }>('/api/tools/:id', async (req) => toolView(tool(req.params.id)));

  /** A maintainer blocks a tool, takes it into maintenance or makes it available; a running session goes on. */
  app.post<{ Params: { id: string } }>('/api/tools/:id/status', async (req) => {
    const t = tool(req.params.id);
    const b = body(toolStatusBody, req.body);
    setToolStatus(ctx.journal, t.cfg.id, b.status, b.reason ?? null, b.by ?? null);
    return toolView(t);
  });

  /** A maintainer ends the running session now, busy or not. */
  app.post<{ Params: { id: string } }>('/api/tools/:id/session/stop', async (req) => tool(req.params.id).forceStop(body(byBody, req.body).by ?? 'api'));

  app.put<{ Params: { id: string } }>('/api/tools/:id/session/use-type', async (req) => {
    const b = body(useTypeBody, req.body);
    return tool(req.params.id).setUseType(b.useType, b.by ?? null);
  });

  const billing = () => {
    if (!ctx.billing) throw new HttpError(404, 'no-billing', 'billing is not configured (the config has no billing section)');
    return ctx.billing;
  };

  /** Statement for months `from`…`to` (YYYY-MM, inclusive); `format=csv` for a spreadsheet. */
  app.get<{ Querystring: Record<string, string | undefined> }>('/api/billing/statement', async (req, reply) => {
    const b = billing();
    const q = body(statementQuery, req.query);
    const st = statement(ctx.journal, { from: q.from, to: q.to ?? q.from, affiliate: q.affiliate, tool: q.tool });
    if (q.format === 'csv') return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="statement-${q.from}-${q.to ?? q.from}.csv"`).send(statementCsv(st, b.cfg.minorUnit));
    return { currency: b.cfg.currency, minorUnit: b.cfg.minorUnit, ...st, closedPeriods: b.closedPeriods() };
  });
  app.get('/api/billing/payback', async () => billing().payback());
  app.post('/api/billing/corrections', async (req, reply) => {
    const c = body(correctionBody, req.body);
    const change = c.void ? ({ kind: 'void' } as const) : c.useType ? ({ kind: 'use-type', useType: c.useType } as const) : c.filamentG !== undefined ? ({ kind: 'material', filamentG: c.filamentG } as const) : ({ kind: 'technician', technicianMin: c.technicianMin! } as const);
    return reply.code(201).send(billing().correct(c.sessionId, change, c.reason, c.by));
  });
  app.post<{ Params: { period: string } }>('/api/billing/periods/:period/close', async (req) => {
    const b = billing();
    b.closePeriod(req.params.period, body(byBody, req.body).by ?? 'api');
    return { closedPeriods: b.closedPeriods() };
  });

  const ledger = () => {
    if (!ctx.ledger) throw new HttpError(404, 'no-ledger', 'no ledger is configured (the config has no ledger section)');
    return ctx.ledger;
  };
  app.get('/api/ledger', async () => ledger().health());
  app.get('/api/ledger/dead-letters', async () => ledger().outbox.deadLetters());
  /** Puts every dead letter back in its queue, once the cause is fixed. */
  app.post('/api/ledger/dead-letters/retry', async () => {
    const d = ledger();
    const retried = d.outbox.retryAllDead();
    d.kick();
    return { retried };
  });
  /** Puts a dead letter back in its tool's queue, once the cause is fixed. */
  app.post<{ Params: { seq: string } }>('/api/ledger/dead-letters/:seq/retry', async (req) => {
    const d = ledger();
    let row;
    try {
      row = d.outbox.retryDead(Number(req.params.seq));
    } catch (err) {
      throw new HttpError(404, 'unknown-dead-letter', (err as Error).message);
    }
    d.kick();
    return row;
  });

  /** Ended sessions, newest first, with what each used. */
  app.get<{ Querystring: Record<string, string | undefined> }>('/api/sessions', async (req) => {
    const q = body(sessionQuery, req.query);
    return ctx.journal
      .events({ kind: 'session.ended', deviceId: q.tool, limit: Number.MAX_SAFE_INTEGER })
      .map((e) => e.data)
      .filter(
        (d) =>
          (q.affiliate === undefined || d.affiliateId === q.affiliate) &&
          (q.useType === undefined || d.useType === q.useType) &&
          (q.from === undefined || (d.endedAt as string) >= q.from) &&
          (q.to === undefined || (d.startedAt as string) < q.to),
      )
      .reverse()
      .slice(0, q.limit);
  });

  app.get('/api/devices', async () => [...ctx.devices.values()].map((d) => d.health()));
  app.get<{ Params: { id: string } }>('/api/devices/:id', async (req) => device(req.params.id).health());

  app.post<{ Params: { id: string }; Querystring: { name?: string }; Body: string }>('/api/devices/:id/jobs', async (req, reply) => {
    const p = printer(req.params.id);
    if (typeof req.body !== 'string' || req.body.length === 0) {
      throw new HttpError(400, 'no-gcode', 'send the G-code file as the request body (Content-Type: text/plain or application/octet-stream)');
    }
    const job = p.startJob(req.query.name ?? 'upload.gcode', req.body);
    return reply.code(201).send(job);
  });

  for (const action of ['pause', 'resume', 'cancel'] as const) {
    app.post<{ Params: { id: string } }>(`/api/devices/:id/jobs/current/${action}`, async (req) => {
      const p = printer(req.params.id);
      p[action]();
      return p.currentJob ?? p.finishedJob;
    });
  }

  app.post<{ Params: { id: string } }>('/api/devices/:id/fault/clear', async (req) => {
    const p = printer(req.params.id);
    p.clearFault();
    return p.health();
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply: FastifyReply) => {
    if (err instanceof HttpError) return reply.code(err.status).send({ error: err.code, message: err.message });
    if (err instanceof BillingError) return reply.code(400).send({ error: 'bad-request', message: err.message });
    if (err instanceof SessionRefusal) return reply.code(err.status).send({ error: err.status === 409 ? 'conflict' : 'bad-request', message: err.message });
    if (err instanceof PrinterRefusal) return reply.code(err.status).send({ error: err.status === 409 ? 'conflict' : 'bad-request', message: err.message });
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: 'bad-request', message: err.message });
    log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'the gateway failed to handle this request; see its log' });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: 'not-found', message: `no route ${req.method} ${req.url}` });
  });
  return app;
}
