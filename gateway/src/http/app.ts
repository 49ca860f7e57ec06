/**
 * The HTTP API as a fastify app built by a function; the composition root listens, tests
 * call `app.inject`. Errors have one shape: `{ error, message }`, the message for a person.
 *
 * Until API tokens exist, the API listens on 127.0.0.1 by default: anyone who can reach it
 * can start and cancel prints.
 */
import Fastify, { type FastifyReply } from 'fastify';
import type { Device } from '../devices/device.js';
import { Printer, PrinterRefusal } from '../devices/printer/driver.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import type { ToolSessions } from '../sessions/tool-sessions.js';
import { VERSION } from '../version.js';

export interface AppContext {
  name: string;
  startedAt: Date;
  devices: ReadonlyMap<string, Device>;
  tools: ReadonlyMap<string, ToolSessions>;
  journal: Journal;
}

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
    return {
      gateway: ctx.name,
      version: VERSION,
      startedAt: ctx.startedAt.toISOString(),
      uptimeS: Math.round((Date.now() - ctx.startedAt.getTime()) / 1000),
      status: devices.every((d) => d.state === 'online') ? 'ok' : 'degraded',
      devices,
    };
  });

  app.get('/api/tools', async () =>
    [...ctx.tools.values()].map((t) => ({ id: t.cfg.id, name: t.cfg.name ?? t.cfg.id, node: t.cfg.node, printer: t.cfg.printer ?? null, session: t.current() })),
  );

  /** Ended sessions, newest first, with what each used. */
  app.get<{ Querystring: { tool?: string; affiliate?: string; limit?: string } }>('/api/sessions', async (req) => {
    const limit = Math.min(1000, Number(req.query.limit ?? 100) || 100);
    return ctx.journal
      .events({ kind: 'session.ended', deviceId: req.query.tool, limit: 100_000 })
      .map((e) => e.data)
      .filter((d) => req.query.affiliate === undefined || d.affiliateId === req.query.affiliate)
      .reverse()
      .slice(0, limit);
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
