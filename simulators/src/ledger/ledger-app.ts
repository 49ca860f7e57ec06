/**
 * The simulated ledger's HTTP app: the JSON batch API and Valueflows GraphQL (the published schema
 * of its flavour, graphql-server.ts) over one store, behind a bearer token when one is set,
 * obeying the faults it is given (a Fastify app built by a function; ledger-sim.ts listens with
 * it and injects the faults).
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Flavour } from '../../../ledger-client/src/flavours.js';
import { LedgerGraphql } from './graphql-server.js';
import type { LedgerStore, RecordResult } from './ledger-store.js';
import { iso, issueText } from './validation.js';

// ---- faults ----

export interface Faults {
  /** Answer the next n requests with `status` (5xx). */
  status5xx: number;
  status: number;
  /** Answer the next n requests with 429 and Retry-After. */
  tooMany: number;
  retryAfterS: number;
  /** Wait this long before handling each request. */
  slowMs: number;
  /** Store the next n batches, then drop the connection without answering. */
  commitThenDrop: number;
  /** Not listening: connections are refused. */
  refusing: boolean;
  /** Refuse the next n records as invalid (JSON: 422; GraphQL: a field error), storing none of them. */
  reject: number;
  rejectMessage: string;
}

export const NO_FAULTS: Faults = { status5xx: 0, status: 503, tooMany: 0, retryAfterS: 1, slowMs: 0, commitThenDrop: 0, refusing: false, reject: 0, rejectMessage: '' };

// ---- the HTTP app ----

const sendBody = z.strictObject({ records: z.array(z.unknown()).max(10_000) });
const lookupBody = z.strictObject({ ids: z.array(z.string()).max(10_000) });
const totalsQuery = z.strictObject({ from: iso, to: iso });
const graphqlBody = z.object({ query: z.string().min(1), variables: z.record(z.string(), z.unknown()).nullish(), operationName: z.string().nullish() });

function parse<T extends z.ZodType>(schema: T, value: unknown, reply: FastifyReply): z.output<T> | null {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  void reply.code(400).send({ error: 'bad-request', message: issueText(r.error) });
  return null;
}

/** Stores, then hangs up without an answer, when the fault asks for it. */
function dropAfterCommit(faults: Faults, req: FastifyRequest, reply: FastifyReply): boolean {
  if (faults.commitThenDrop <= 0) return false;
  faults.commitThenDrop--;
  reply.hijack();
  req.raw.socket.destroy();
  return true;
}

export function buildLedgerApp(store: LedgerStore, faults: Faults, opts: { token?: string; logger?: boolean; flavour?: Flavour } = {}): FastifyInstance {
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: 32 * 1024 * 1024 });
  const graphql = new LedgerGraphql(store, faults, opts.flavour ?? 'vf-graphql');

  app.addHook('onRequest', async (_req, reply) => {
    if (faults.tooMany > 0) {
      faults.tooMany--;
      return reply.code(429).header('retry-after', String(faults.retryAfterS)).send({ error: 'too-many-requests', message: `slow down: try again in ${faults.retryAfterS} s` });
    }
    if (faults.status5xx > 0) {
      faults.status5xx--;
      return reply.code(faults.status).send({ error: 'unavailable', message: 'the ledger is unavailable (simulated)' });
    }
  });
  app.addHook('preHandler', async () => {
    if (faults.slowMs > 0) await sleep(faults.slowMs);
  });

  app.get('/health', async () => ({ status: 'ok', records: store.db.prepare('SELECT COUNT(*) FROM records').pluck().get() }));
  /** The newest rows first, for a person watching records arrive (e.g. with `npm start`); `recordId` is the gateway's id of a record. */
  app.get<{ Querystring: { limit?: string } }>('/records', async (req) => {
    const limit = Math.min(1000, Math.max(1, Number(req.query.limit) || 50));
    return (store.db.prepare('SELECT seq, id, record_id AS recordId, via, stored_at AS storedAt, body FROM records ORDER BY seq DESC LIMIT ?').all(limit) as { seq: number; id: string; recordId: string | null; via: string; storedAt: string; body: string }[]).map(
      ({ body, ...r }) => ({ ...r, record: JSON.parse(body) as unknown }),
    );
  });

  // The API, behind the bearer token when one is set.
  void app.register(async (api) => {
    if (opts.token) {
      api.addHook('onRequest', async (req, reply) => {
        if (req.headers.authorization !== `Bearer ${opts.token}`) {
          return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized', message: 'a valid bearer token is required' });
        }
      });
    }

    api.post('/records', async (req, reply) => {
      const body = parse(sendBody, req.body, reply);
      if (!body) return reply;
      const results = store.db.transaction(() =>
        body.records.map((r): RecordResult => {
          if (faults.reject <= 0) return store.submit(r);
          faults.reject--;
          return { id: String((r as { id?: unknown }).id), status: 'rejected', message: faults.rejectMessage };
        }),
      )();
      if (dropAfterCommit(faults, req, reply)) return reply;
      return reply.code(results.some((r) => r.status === 'rejected') ? 422 : 200).send({ results });
    });

    api.post('/lookup', async (req, reply) => {
      const body = parse(lookupBody, req.body, reply);
      if (!body) return reply;
      return { found: store.has(body.ids) };
    });

    api.get('/totals', async (req, reply) => {
      const q = parse(totalsQuery, req.query, reply);
      if (!q) return reply;
      return store.totals(q.from, q.to);
    });

    api.post('/graphql', async (req, reply) => {
      const body = parse(graphqlBody, req.body, reply);
      if (!body) return reply;
      const result = graphql.run(body);
      if (result.mutation && dropAfterCommit(faults, req, reply)) return reply;
      return reply.code(result.status).send(result.body);
    });
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    return reply.code(status).send({ error: status === 500 ? 'internal' : 'bad-request', message: err.message });
  });
  return app;
}
