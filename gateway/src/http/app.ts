/**
 * The HTTP API as a fastify app built by a function; the composition root listens, tests
 * call `app.inject`. Routes are plugins per resource (routes/), their zod schemas give
 * validation, types and the OpenAPI document at /api/docs. Every /api route but the short
 * health and the docs needs a bearer token (auth.ts); the check lives in the encapsulated
 * plugin around the routes it guards. Errors have one shape: `{ error, message }`.
 */
import Fastify from 'fastify';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import { authenticate, FailureLimit, requireRole } from './auth.js';
import type { AppContext } from './context.js';
import { registerDashboard } from './dashboard.js';
import { clientError, codeOf, errorBody, errorHandler, frameworkError, HttpError, shownPath } from './errors.js';
import { EventHub } from './events.js';
import { health } from './health.js';
import { Metrics } from './metrics.js';
import { affiliateRoutes } from './routes/affiliates.js';
import { billingRoutes } from './routes/billing.js';
import { deviceRoutes } from './routes/devices.js';
import { ledgerRoutes } from './routes/ledger.js';
import { maintenanceRoutes } from './routes/maintenance.js';
import { meRoutes } from './routes/me.js';
import { notificationRoutes } from './routes/notifications.js';
import { sessionRoutes } from './routes/sessions.js';
import { toolRoutes } from './routes/tools.js';
import { TokenCheck } from './tokens.js';
import { octoPrintRoutes } from './octoprint.js';
import { printJobRoutes } from './routes/print-jobs.js';

export type { AppContext } from './context.js';

/** Longest URL served: no route nor file of the gateway comes near it. */
export const MAX_URL = 2048;
/** Largest G-code file accepted for print-host mode. */
const MAX_GCODE_BYTES = 256 * 1024 * 1024;

const refusals = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 414: errorBody, 415: errorBody, 429: errorBody };

/**
 * The dashboard loads its modules and style sheet from here and nothing else: no inline script
 * or style, no framing by another site. No upgrade-insecure-requests: a lab network is often
 * plain HTTP.
 */
const CSP = {
  useDefaults: false,
  directives: { defaultSrc: ["'self'"], baseUri: ["'self'"], formAction: ["'self'"], frameAncestors: ["'none'"], imgSrc: ["'self'", 'data:'], objectSrc: ["'none'"], scriptSrcAttr: ["'none'"] },
};

export function buildApp(ctx: AppContext, log: Logger) {
  // Requests are not logged one by one (a tablet polling health would flood the SD card).
  const app = Fastify({
    loggerInstance: log.child({ part: 'http' }, { level: 'warn' }),
    // the client's address from X-Forwarded-For only when the request comes from one of these proxies
    trustProxy: ctx.trustProxy.length ? [...ctx.trustProxy] : false,
    frameworkErrors: frameworkError,
    clientErrorHandler: clientError,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.addContentTypeParser(['text/plain', 'application/octet-stream', 'text/x-gcode'], { parseAs: 'string', bodyLimit: MAX_GCODE_BYTES }, (_req, body, done) => done(null, body));
  app.setErrorHandler(errorHandler(log));
  app.addHook('onRequest', async (req) => {
    if (req.url.length > MAX_URL) throw new HttpError(414, codeOf(414), `this URL has ${req.url.length} characters, more than the ${MAX_URL} the gateway reads: ${req.method} ${shownPath(req.url)}`);
  });
  app.setNotFoundHandler((req, reply) => void reply.code(404).send({ error: codeOf(404), message: `no route ${req.method} ${shownPath(req.url)}` }));
  void app.register(helmet, { contentSecurityPolicy: CSP, referrerPolicy: { policy: 'no-referrer' }, xFrameOptions: { action: 'deny' }, strictTransportSecurity: false, crossOriginEmbedderPolicy: false });

  const tokens = new TokenCheck(ctx.journal);
  const failures = new FailureLimit();
  const events = new EventHub(ctx, log.child({ part: 'http' }));
  const metrics = new Metrics(ctx, () => events.size);
  events.start();
  app.decorateRequest('auth', null);
  app.addHook('onResponse', async (req, reply) => metrics.observe(req, reply));
  // Every change made through the API is journaled with the token that made it (its id and name), whatever the change's own event says.
  app.addHook('onResponse', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.auth === null || reply.statusCode >= 400) return;
    try {
      ctx.journal.record('api.action', null, { method: req.method, route: req.routeOptions.url ?? null, params: req.params, status: reply.statusCode, tokenId: req.auth.id, name: req.auth.name, role: req.auth.role });
    } catch (err) {
      log.error({ err, method: req.method, url: req.url, tokenId: req.auth.id }, 'an API action could not be journaled with its token');
    }
  });
  // before the server waits for its connections to end: the event streams would keep it open
  app.addHook('preClose', async () => {
    events.stop();
    metrics.stop();
  });
  // every route's refusals in the document, in one place
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/api/') && !route.url.startsWith('/api/docs') && route.schema) route.schema.response = { ...refusals, ...(route.schema.response as object) };
  });

  void app.register(swagger, {
    openapi: {
      info: { title: 'ovn-gateway API', version: VERSION, description: 'Tools, sessions, billing, devices and maintenance of a lab gateway. Send `Authorization: Bearer <token>` (ovn-gateway tokens create).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  // Swagger UI sets styles inline: its pages alone allow them.
  void app.register(swaggerUi, { routePrefix: '/api/docs', staticCSP: "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; object-src 'none'" });

  // Public: the short health, and /metrics when the config says so.
  void app.register(async (pub) => {
    pub.get('/api/health', { schema: { tags: ['health'], summary: 'Short health without a token; with an affiliate token also the devices\' states; in full (devices, storage, ledger, MQTT) for the other roles', security: [] } }, async (req) => {
      req.auth = authenticate(tokens, failures, req, false);
      return health(ctx, req.auth === null ? 'short' : req.auth.role === 'affiliate' ? 'devices' : 'full');
    });
    pub.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
      if (!ctx.metricsPublic) {
        req.auth = authenticate(tokens, failures, req, true);
        requireRole(req, ['maintainer', 'admin']);
      }
      return reply.type(metrics.registry.contentType).send(await metrics.text());
    });
  });

  // Everything else needs a token.
  void app.register(async (api) => {
    api.addHook('onRequest', async (req) => {
      req.auth = authenticate(tokens, failures, req, true);
    });
    for (const routes of [meRoutes, toolRoutes, sessionRoutes, billingRoutes, deviceRoutes, maintenanceRoutes, affiliateRoutes, ledgerRoutes, notificationRoutes]) void api.register(routes, { ctx });
    if (ctx.printQueue) void api.register(printJobRoutes, { ctx, queue: ctx.printQueue });
    api.get(
      '/api/events',
      { schema: { tags: ['events'], summary: 'Server-Sent Events: tool, session, device, alert (token also as ?token= for EventSource)', querystring: z.object({ token: z.string().max(100).optional() }) } },
      async (req, reply) => events.connect(req, reply),
    );
  });

  // The API slicers speak, one base URL per printer tool, with its own key handling (X-Api-Key).
  if (ctx.printQueue) void app.register(octoPrintRoutes, { prefix: '/octoprint/:tool', queue: ctx.printQueue, tokens, failures });

  void app.register(registerDashboard);
  return app;
}
