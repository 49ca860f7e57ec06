/**
 * A contribution-accounting ledger for tests and demos: an HTTP server with its own SQLite
 * database that speaks the JSON batch API and the Valueflows GraphQL subset the gateway's
 * transports use (ledger-client/README.md), and behaves like a strict ledger:
 * - it validates every record and refuses an invalid one with a message naming the field;
 * - it deduplicates by id: a record sent again is stored once and answered as delivered; the
 *   same id with other content is refused (a gateway's ids must be stable);
 * - references must name records it holds: `inputOf` a process, `triggeredBy` an economic event
 *   (`corrects` is kept as given: Valueflows servers have no such field to check it against);
 * - it reports totals over the records created in a period, for reconciliation.
 * Faults on demand: refuse connections, answer 5xx, answer slowly, answer 429 with Retry-After,
 * or store a batch and then drop the connection without answering. The ground truth (every
 * record, how many times each id was stored and received) is what tests compare with.
 */
import Database from 'better-sqlite3';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { totalsOf } from '../../../ledger-client/src/totals.js';
import type { LedgerRecord, LedgerTotals } from '../../../ledger-client/src/types.js';
import { GraphqlSyntaxError, parseOperation, project, valueOf, type Field } from './graphql-subset.js';

// ---- what the ledger accepts ----

const iso = z.iso.datetime({ offset: true, message: 'expected an ISO 8601 date-time with an offset, e.g. 2026-11-24T15:00:00Z' });
const UNIT = /^(om2:(hour|minute|second|gram|kilogram|kilowattHour|one)|iso4217:[A-Z]{3})$/;
const unit = z.string().regex(UNIT, 'expected an OM2 unit (om2:hour, om2:minute, om2:gram, om2:kilowattHour, om2:one …) or iso4217:<currency code>');
const measure = z.strictObject({ hasNumericalValue: z.number({ message: 'expected a number' }), hasUnit: unit });
const ref = z.string().min(1, 'must not be empty').max(200);
const common = {
  id: ref,
  created: iso,
  note: z.string().max(4000).optional(),
  // Gateway-side fields the JSON batch carries along; not Valueflows, not compared.
  toolId: z.string().optional(),
  journalEventId: z.number().int().optional(),
};
const ACTIONS = ['use', 'consume', 'work', 'transfer', 'produce', 'cite', 'deliver-service', 'transfer-all-rights', 'transfer-custody', 'move', 'raise', 'lower'] as const;

export const recordSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('process'), ...common, name: z.string().min(1, 'must not be empty'), hasBeginning: iso, hasEnd: iso }),
    z.strictObject({
      type: z.literal('economic-event'),
      ...common,
      action: z.enum(ACTIONS, { message: `expected a Valueflows action id (${ACTIONS.join(', ')})` }),
      provider: ref,
      receiver: ref,
      inputOf: ref.optional(),
      outputOf: ref.optional(),
      resourceInventoriedAs: ref.optional(),
      resourceConformsTo: ref.optional(),
      resourceQuantity: measure.optional(),
      effortQuantity: measure.optional(),
      hasBeginning: iso.optional(),
      hasEnd: iso.optional(),
      hasPointInTime: iso.optional(),
      triggeredBy: ref.optional(),
      corrects: ref.optional(),
    }),
    z.strictObject({
      type: z.literal('claim'),
      ...common,
      action: z.literal('transfer', { message: 'expected "transfer": a claim here is money owed' }),
      provider: ref,
      receiver: ref,
      resourceQuantity: measure,
      triggeredBy: ref,
      due: iso.optional(),
      corrects: ref.optional(),
    }),
  ],
  { message: 'expected type "process", "economic-event" or "claim"' },
);

type Accepted = z.output<typeof recordSchema>;

const TIME_UNITS = new Set(['om2:hour', 'om2:minute', 'om2:second']);

/** What Valueflows (and hREA) require beyond the shape; the first problem, naming the field. */
function problemOf(r: Accepted, typeOf: (id: string) => string | undefined): string | null {
  if (r.type === 'process') return Date.parse(r.hasEnd) < Date.parse(r.hasBeginning) ? 'hasEnd: before hasBeginning' : null;
  const negative = (m: { hasNumericalValue: number } | undefined) => m !== undefined && m.hasNumericalValue < 0 && !r.corrects;
  if (negative(r.resourceQuantity)) return 'resourceQuantity.hasNumericalValue: negative, which only a correction (corrects) may be';
  if (r.type === 'claim') {
    if (!r.resourceQuantity.hasUnit.startsWith('iso4217:')) return 'resourceQuantity.hasUnit: a claim here is money: expected iso4217:<currency code>';
    if (typeOf(r.triggeredBy) !== 'economic-event') return `triggeredBy: no economic event ${r.triggeredBy} here`;
    return null;
  }
  if (negative(r.effortQuantity)) return 'effortQuantity.hasNumericalValue: negative, which only a correction (corrects) may be';
  if ((r.action === 'use' || r.action === 'work') && !r.effortQuantity) return `effortQuantity: required for ${r.action}`;
  if (r.effortQuantity && !TIME_UNITS.has(r.effortQuantity.hasUnit)) return 'effortQuantity.hasUnit: expected a time (om2:hour, om2:minute, om2:second)';
  if (r.action === 'consume' && !r.resourceQuantity) return 'resourceQuantity: required for consume';
  if (!r.hasPointInTime && !r.hasBeginning) return 'hasPointInTime: an event needs hasPointInTime or hasBeginning';
  if ((r.action === 'use' || r.action === 'consume' || r.action === 'work') && !r.inputOf) return `inputOf: ${r.action} must be an input of a process`;
  if (r.inputOf && typeOf(r.inputOf) !== 'process') return `inputOf: no process ${r.inputOf} here`;
  if (r.triggeredBy && typeOf(r.triggeredBy) !== 'economic-event') return `triggeredBy: no economic event ${r.triggeredBy} here`;
  return null;
}

function issueText(error: z.ZodError): string {
  const i = error.issues[0]!;
  const path = i.code === 'unrecognized_keys' ? [...i.path, i.keys[0]!] : i.path;
  const what = i.code === 'unrecognized_keys' ? 'unknown field' : i.message;
  return `${path.length ? path.map(String).join('.') : '(record)'}: ${what}`;
}

// ---- storage ----

export interface StoredRecord {
  seq: number;
  id: string;
  via: 'json' | 'graphql';
  storedAt: string;
  record: LedgerRecord;
}

export type RecordResult = { id: string; status: 'stored' | 'duplicate' } | { id: string; status: 'rejected'; message: string };

/** The comparable content of a record: everything Valueflows sees, keys in order. */
const canonical = (r: Accepted) =>
  JSON.stringify(
    Object.fromEntries(
      Object.entries(r)
        .filter(([k, v]) => k !== 'toolId' && k !== 'journalEventId' && v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : 1)),
    ),
  );

export class LedgerStore {
  readonly db: Database.Database;
  private readonly stmt;

  constructor(file = ':memory:', private readonly now: () => Date = () => new Date()) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // As a ledger server would: consistent after a crash, without a disk sync per request.
    this.db.pragma('synchronous = NORMAL');
    // No unique index on id: deduplication is the ledger's logic, and the ground truth counts
    // rows per id, so a failure to deduplicate shows up as a count of 2 rather than a crash.
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, type TEXT NOT NULL,
        created TEXT NOT NULL, body TEXT NOT NULL, canonical TEXT NOT NULL, via TEXT NOT NULL, stored_at TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS records_id ON records (id);
      CREATE INDEX IF NOT EXISTS records_created ON records (created);
      CREATE TABLE IF NOT EXISTS receipts (id TEXT NOT NULL, via TEXT NOT NULL, at TEXT NOT NULL, result TEXT NOT NULL);`);
    this.stmt = {
      row: this.db.prepare('SELECT type, canonical FROM records WHERE id = ? ORDER BY seq LIMIT 1'),
      insert: this.db.prepare('INSERT INTO records (id, type, created, body, canonical, via, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      receipt: this.db.prepare('INSERT INTO receipts (id, via, at, result) VALUES (?, ?, ?, ?)'),
    };
  }

  private row(id: string): { type: string; canonical: string } | undefined {
    return this.stmt.row.get(id) as { type: string; canonical: string } | undefined;
  }

  typeOf(id: string): string | undefined {
    return this.row(id)?.type;
  }

  /** Validates and stores one record, or says why not. */
  submit(raw: unknown, via: 'json' | 'graphql'): RecordResult {
    const at = this.now().toISOString();
    const rawId = typeof (raw as { id?: unknown })?.id === 'string' ? (raw as { id: string }).id : '';
    const result = ((): RecordResult => {
      const parsed = recordSchema.safeParse(raw);
      if (!parsed.success) return { id: rawId, status: 'rejected', message: issueText(parsed.error) };
      const r = parsed.data;
      const existing = this.row(r.id);
      if (existing) {
        return existing.canonical === canonical(r) ? { id: r.id, status: 'duplicate' } : { id: r.id, status: 'rejected', message: `id: ${r.id} is already used by a different record` };
      }
      const problem = problemOf(r, (id) => this.typeOf(id));
      if (problem) return { id: r.id, status: 'rejected', message: problem };
      // `created` is kept as an instant in one notation, so periods compare as text.
      const record = { ...r, created: new Date(r.created).toISOString() };
      this.stmt.insert.run(r.id, r.type, record.created, JSON.stringify(record), canonical(r), via, at);
      return { id: r.id, status: 'stored' };
    })();
    this.stmt.receipt.run(result.id, via, at, result.status);
    return result;
  }

  get(id: string): LedgerRecord | null {
    const row = this.db.prepare('SELECT body FROM records WHERE id = ? ORDER BY seq LIMIT 1').get(id) as { body: string } | undefined;
    return row ? (JSON.parse(row.body) as LedgerRecord) : null;
  }

  has(ids: readonly string[]): string[] {
    const stmt = this.db.prepare('SELECT 1 FROM records WHERE id = ? LIMIT 1');
    return ids.filter((id) => stmt.get(id) !== undefined);
  }

  /** Over the records created in [from, to). */
  totals(from: string, to: string): LedgerTotals {
    const rows = this.db.prepare('SELECT body FROM records WHERE created >= ? AND created < ? ORDER BY seq').pluck().all(new Date(from).toISOString(), new Date(to).toISOString()) as string[];
    return totalsOf(rows.map((b) => JSON.parse(b) as LedgerRecord));
  }

  all(): StoredRecord[] {
    return (this.db.prepare('SELECT seq, id, via, stored_at AS storedAt, body FROM records ORDER BY seq').all() as (Omit<StoredRecord, 'record'> & { body: string })[]).map(({ body, ...r }) => ({
      ...r,
      record: JSON.parse(body) as LedgerRecord,
    }));
  }

  /** How many rows hold this id: 1 for every record ever sent, whatever the retries. */
  countOf(id: string): number {
    return this.db.prepare('SELECT COUNT(*) FROM records WHERE id = ?').pluck().get(id) as number;
  }

  /** How many times a record with this id arrived (stored, duplicate or rejected). */
  receivedOf(id: string): number {
    return this.db.prepare('SELECT COUNT(*) FROM receipts WHERE id = ?').pluck().get(id) as number;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

// ---- GraphQL ----

const MUTATIONS: Record<string, { arg: string; type: LedgerRecord['type']; payload: string }> = {
  createProcess: { arg: 'process', type: 'process', payload: 'process' },
  createEconomicEvent: { arg: 'event', type: 'economic-event', payload: 'economicEvent' },
  createClaim: { arg: 'claim', type: 'claim', payload: 'claim' },
};
const QUERIES: Record<string, LedgerRecord['type'] | 'totals'> = { process: 'process', economicEvent: 'economic-event', claim: 'claim', ledgerTotals: 'totals' };

/** A stored record as the GraphQL types show it: actions and units as objects with ids. */
function asGraphql(r: LedgerRecord): Record<string, unknown> {
  const m = (q: { hasNumericalValue: number; hasUnit: string } | undefined) => q && { hasNumericalValue: q.hasNumericalValue, hasUnit: { id: q.hasUnit, label: q.hasUnit, symbol: q.hasUnit } };
  if (r.type === 'process') return { ...r };
  return { ...r, action: { id: r.action, label: r.action }, resourceQuantity: m(r.resourceQuantity), effortQuantity: 'effortQuantity' in r ? m(r.effortQuantity) : undefined };
}

interface GqlError {
  message: string;
  path?: string[];
  extensions: { code: string };
}

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
  /** Refuse the next n records sent to the JSON API as invalid (422), storing none of them. */
  reject: number;
  rejectMessage: string;
}

const NO_FAULTS: Faults = { status5xx: 0, status: 503, tooMany: 0, retryAfterS: 1, slowMs: 0, commitThenDrop: 0, refusing: false, reject: 0, rejectMessage: '' };

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

export function buildLedgerApp(store: LedgerStore, faults: Faults, opts: { token?: string; logger?: boolean } = {}): FastifyInstance {
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: 32 * 1024 * 1024 });

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
  /** The newest records first, for a person watching records arrive (e.g. with `npm start`). */
  app.get<{ Querystring: { limit?: string } }>('/records', async (req) => {
    const limit = Math.min(1000, Math.max(1, Number(req.query.limit) || 50));
    return (store.db.prepare('SELECT seq, id, via, stored_at AS storedAt, body FROM records ORDER BY seq DESC LIMIT ?').all(limit) as { seq: number; id: string; via: string; storedAt: string; body: string }[]).map(
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
          if (faults.reject <= 0) return store.submit(r, 'json');
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
      const bad = (message: string) => reply.code(400).send({ errors: [{ message, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }] });
      let op;
      try {
        op = parseOperation(body.query, body.operationName);
      } catch (err) {
        if (err instanceof GraphqlSyntaxError) return reply.code(400).send({ errors: [{ message: `Syntax Error: ${err.message}`, extensions: { code: 'GRAPHQL_PARSE_FAILED' } }] });
        throw err;
      }
      const known = op.type === 'mutation' ? MUTATIONS : QUERIES;
      const unknownField = op.selections.find((f) => !(f.name in known));
      if (unknownField) return bad(`Cannot query field "${unknownField.name}" on type "${op.type === 'mutation' ? 'Mutation' : 'Query'}" (the simulator's subset: ${Object.keys(known).join(', ')}).`);
      const variables = body.variables ?? {};
      const data: Record<string, unknown> = {};
      const errors: GqlError[] = [];
      const run = (f: Field) => {
        const key = f.alias ?? f.name;
        if (op.type === 'mutation') {
          const m = MUTATIONS[f.name]!;
          const input = valueOf(f.args[m.arg] ?? { kind: 'literal', value: null }, variables);
          if (!input || typeof input !== 'object' || Array.isArray(input)) {
            data[key] = null;
            return errors.push({ message: `${m.arg}: expected an input object`, path: [key], extensions: { code: 'BAD_USER_INPUT' } });
          }
          // Servers like hREA choose ids themselves; a client that sends none gets one (and no deduplication).
          const raw = { type: m.type, id: `sim-${randomUUID()}`, created: new Date().toISOString(), ...(input as Record<string, unknown>) };
          const result = store.submit(raw, 'graphql');
          if (result.status === 'rejected') {
            data[key] = null;
            return errors.push({ message: `${m.arg}.${result.message}`, path: [key], extensions: { code: 'BAD_USER_INPUT' } });
          }
          data[key] = project({ [m.payload]: asGraphql(store.get(result.id)!) }, f.selections);
          return;
        }
        const kind = QUERIES[f.name]!;
        const args = Object.fromEntries(Object.entries(f.args).map(([k, v]) => [k, valueOf(v, variables)]));
        if (kind === 'totals') {
          const q = totalsQuery.safeParse(args);
          if (!q.success) {
            data[key] = null;
            return errors.push({ message: issueText(q.error), path: [key], extensions: { code: 'BAD_USER_INPUT' } });
          }
          const t = store.totals(q.data.from, q.data.to);
          data[key] = project({ records: t.records, sums: Object.entries(t.sums).map(([k, value]) => ({ key: k, value })) }, f.selections);
          return;
        }
        const r = typeof args.id === 'string' ? store.get(args.id) : null;
        data[key] = r && r.type === kind ? project(asGraphql(r), f.selections) : null;
      };
      if (op.type === 'mutation') store.db.transaction(() => op.selections.forEach(run))();
      else op.selections.forEach(run);
      if (op.type === 'mutation' && dropAfterCommit(faults, req, reply)) return reply;
      return errors.length ? { data, errors } : { data };
    });
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    return reply.code(status).send({ error: status === 500 ? 'internal' : 'bad-request', message: err.message });
  });
  return app;
}

// ---- the simulator ----

export interface LedgerSimOptions {
  /** SQLite file, or ':memory:' (default). */
  db?: string;
  /** When set, the API wants `Authorization: Bearer <token>`. */
  token?: string;
  host?: string;
  /** 0: any free port. */
  port?: number;
}

export interface LedgerTruth {
  records: StoredRecord[];
  /** Rows per id: must be 1 for every id. */
  countPerId: Record<string, number>;
}

export class LedgerSim {
  readonly store: LedgerStore;
  readonly app: FastifyInstance;
  private readonly faults: Faults = { ...NO_FAULTS };
  private readonly sockets = new Set<Socket>();
  private host = '127.0.0.1';
  private port = 0;

  constructor(opts: LedgerSimOptions = {}) {
    this.store = new LedgerStore(opts.db ?? ':memory:');
    this.app = buildLedgerApp(this.store, this.faults, { token: opts.token });
    this.app.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  static async start(opts: LedgerSimOptions = {}): Promise<LedgerSim> {
    const sim = new LedgerSim(opts);
    await sim.app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
    const a = sim.app.server.address() as { address: string; port: number };
    sim.host = opts.host ?? '127.0.0.1';
    sim.port = a.port;
    return sim;
  }

  /** The base URL of the JSON batch API; GraphQL is at `${url}/graphql`. */
  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  // ---- fault injection ----

  /** Stop listening and cut every open connection (on), or listen again on the same port (off). */
  async refuse(on: boolean): Promise<void> {
    if (on === this.faults.refusing) return;
    this.faults.refusing = on;
    const server = this.app.server;
    if (on) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of this.sockets) s.destroy();
      await closed;
    } else {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.port, this.host, () => (server.off('error', reject), resolve()));
      });
    }
  }

  /** The next n records sent to the JSON API are refused as invalid, with this message. */
  reject(n: number, message = 'rejected by the simulated ledger'): void {
    Object.assign(this.faults, { reject: n, rejectMessage: message });
  }

  status5xx(n: number, status = 503): void {
    if (status < 500 || status > 599) throw new Error(`status5xx: ${status} is not a 5xx status`);
    Object.assign(this.faults, { status5xx: n, status });
  }

  slow(ms: number): void {
    this.faults.slowMs = ms;
  }

  tooMany(n: number, retryAfterS: number): void {
    Object.assign(this.faults, { tooMany: n, retryAfterS });
  }

  commitThenDrop(n: number): void {
    this.faults.commitThenDrop = n;
  }

  async clearFaults(): Promise<void> {
    await this.refuse(false);
    Object.assign(this.faults, NO_FAULTS);
  }

  get faultState(): Readonly<Faults> {
    return { ...this.faults };
  }

  // ---- ground truth ----

  truth(): LedgerTruth {
    const records = this.store.all();
    const countPerId: Record<string, number> = {};
    for (const r of records) countPerId[r.id] = (countPerId[r.id] ?? 0) + 1;
    return { records, countPerId };
  }

  countOf(id: string): number {
    return this.store.countOf(id);
  }

  receivedOf(id: string): number {
    return this.store.receivedOf(id);
  }

  totals(from: string, to: string): LedgerTotals {
    return this.store.totals(from, to);
  }

  async close(): Promise<void> {
    await this.refuse(false).catch(() => {});
    for (const s of this.sockets) s.destroy();
    await this.app.close();
    this.store.close();
  }
}
