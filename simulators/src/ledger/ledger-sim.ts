/**
 * A contribution-accounting ledger for tests and demos: an HTTP server with its own SQLite
 * database that speaks the JSON batch API and Valueflows GraphQL (ledger-client/README.md).
 * - GraphQL is the published schema of its flavour (vf-graphql 0.9 or 0.8, hREA, Bonfire),
 *   executed with graphql-js: it refuses what that schema refuses, names every object with an id
 *   of its own, deduplicates nothing (as Valueflows servers do), wants every reference to name
 *   an object it holds, and in hREA mode applies hREA's rules (graphql-server.ts).
 * - The JSON batch API validates every record and refuses an invalid one with a message naming
 *   the field; it deduplicates by id (a record sent again is stored once and answered as
 *   delivered; the same id with other content is refused); references must name records it
 *   holds; it reports totals over the records created in a period.
 * Faults on demand: refuse connections, answer 5xx, answer slowly, answer 429 with Retry-After,
 * refuse records, or store a batch and then drop the connection without answering. The ground
 * truth (every record of the gateway's, how many times each was stored and received) is what
 * tests compare with.
 */
import type { FastifyInstance } from 'fastify';
import type { Socket } from 'node:net';
import type { Flavour } from '../../../ledger-client/src/flavours.js';
import type { LedgerTotals } from '../../../ledger-client/src/types.js';
import { buildLedgerApp, NO_FAULTS, type Faults } from './ledger-app.js';
import { LedgerStore, type StoredRecord } from './ledger-store.js';

export interface LedgerSimOptions {
  /** SQLite file, or ':memory:' (default). */
  db?: string;
  /** When set, the API wants `Authorization: Bearer <token>`. */
  token?: string;
  host?: string;
  /** 0: any free port. */
  port?: number;
  /** Whose published schema and rules its GraphQL speaks (default vf-graphql, 0.9). */
  flavour?: Flavour;
}

export interface LedgerTruth {
  /** The gateway's records held, by either API (GraphQL's known by the marker in their note). */
  records: StoredRecord[];
  /** Rows per record id: must be 1 for every id. */
  countPerId: Record<string, number>;
}

export class LedgerSim {
  readonly store: LedgerStore;
  readonly flavour: Flavour;
  readonly app: FastifyInstance;
  private readonly faults: Faults = { ...NO_FAULTS };
  private readonly sockets = new Set<Socket>();
  private host = '127.0.0.1';
  private port = 0;

  constructor(opts: LedgerSimOptions = {}) {
    this.store = new LedgerStore(opts.db ?? ':memory:');
    this.flavour = opts.flavour ?? 'vf-graphql';
    this.app = buildLedgerApp(this.store, this.faults, { token: opts.token, flavour: this.flavour });
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

  /** The next n records are refused as invalid, with this message. */
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
    const records = this.store.records();
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

  /** Over the records the JSON batch API holds (GraphQL's are summed by the client from the lists). */
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
