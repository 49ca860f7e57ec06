/**
 * Delivery to the ledger through the outbox, against the ledger simulator over HTTP, over the
 * JSON batch API and over GraphQL as each Valueflows server speaks it (no deduplication there:
 * exactly once is the gateway's doing): every record of every closed session arrives exactly
 * once and in order per tool, through outages, answers lost after the ledger committed, a
 * gateway killed in the middle of a drain, and records the ledger refuses (dead letters, retried
 * once fixed).
 */
import Database from 'better-sqlite3';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Flavour } from '../ledger-client/src/flavours.js';
import { GraphqlTransport } from '../ledger-client/src/graphql.js';
import { JsonBatchTransport } from '../ledger-client/src/json-batch.js';
import type { LedgerTransport } from '../ledger-client/src/types.js';
import { Outbox } from '../gateway/src/ledger/outbox.js';
import { reconcile } from '../gateway/src/ledger/reconcile.js';
import { LedgerSim } from '../simulators/src/ledger/ledger-sim.js';
import type { StoredRecord } from '../simulators/src/ledger/ledger-store.js';
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { serveTcp, type SimTransport } from '../simulators/src/transports.js';
import { adminHeaders, freePort, SIM_CLOCK_RATE, startTestGateway, tempDir, waitFor, type TestGateway } from './helpers.js';

const ADA = '04A1B2C3';

const billing = {
  currency: 'CAD',
  tools: { printer: { tariffs: { commercial: { hourlyRate: '6.00', minimumCharge: '2.00' } }, coOwnership: { coOwners: [{ affiliate: 'ada', contribution: '300.00' }, { affiliate: 'bo', contribution: '100.00' }] } } },
};
const affiliates = [{ id: 'ada', name: 'Ada', badges: [ADA], qualifications: [{ tool: 'printer' }] }];

interface OutboxRow {
  seq: number;
  record_id: string;
  state: string;
}

function outboxOf(db: Database.Database): OutboxRow[] {
  return db.prepare('SELECT seq, record_id, state FROM outbox ORDER BY seq').all() as OutboxRow[];
}

/** How the gateway reaches the ledger: the JSON batch API, or GraphQL in a flavour. */
interface Mode {
  name: string;
  flavour?: Flavour;
}
const JSON_API: Mode = { name: 'JSON batch API' };
const MODES: Mode[] = [JSON_API, ...(['vf-graphql', 'vf-graphql-0.8', 'hrea'] as const).map((flavour) => ({ name: `GraphQL (${flavour})`, flavour }))];

/** The gateway's ledger config for a mode. */
const ledgerConfig = (mode: Mode, sim: LedgerSim) => (mode.flavour ? { url: `${sim.url}/graphql`, transport: 'graphql', flavour: mode.flavour } : { url: sim.url });

const transportOf = (mode: Mode, sim: LedgerSim, gatewayId: string): LedgerTransport =>
  mode.flavour ? new GraphqlTransport({ url: `${sim.url}/graphql`, flavour: mode.flavour, gatewayId }) : new JsonBatchTransport({ url: sim.url });

/** `type:action` of a record as the ledger holds it (a GraphQL ledger's Commitment is money owed, our claim). */
function kindOf(s: StoredRecord): string {
  if (s.via === 'json') return `${s.record.type}${s.record.type === 'process' ? '' : `:${s.record.action}`}`;
  const type = { Process: 'process', EconomicEvent: 'economic-event', Claim: 'claim', Commitment: 'claim' }[s.record.__typename];
  return `${type}${type === 'process' ? '' : `:${String(s.record.action)}`}`;
}

/** Each record the gateway wrote is at the ledger exactly once, and they arrived in the outbox's order. */
function expectExactlyOnceInOrder(rows: OutboxRow[], ledger: LedgerSim): void {
  const truth = ledger.truth();
  for (const r of rows) expect(truth.countPerId[r.record_id], r.record_id).toBe(1);
  expect(truth.records.length).toBe(rows.length);
  expect(truth.records.map((r) => r.id)).toEqual(rows.map((r) => r.record_id));
}

describe.each(MODES)('delivery to the ledger: $name', (mode) => {
  let node: MeteringNodeSim;
  let transport: SimTransport;
  let ledger: LedgerSim;
  let gw: TestGateway;
  const session = async () => {
    const before = gw.journal.events({ kind: 'billing.charge' }).length;
    node.badge(ADA);
    await waitFor(() => gw.journal.events({ kind: 'session.started' }).length > before);
    await new Promise((r) => setTimeout(r, 600)); // some use to charge: a session of 0 s costs nothing
    node.badge(ADA);
    await waitFor(() => gw.journal.events({ kind: 'billing.charge' }).length === before + 1);
  };
  const health = async () => ((await gw.health()) as unknown as { ledger: { backlog: number; deadLetters: number; alarm: string | null } }).ledger;

  beforeAll(async () => {
    node = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 100, powerW: 200, timeScale: 60 });
    transport = await serveTcp(node, '127.0.0.1', 0);
    ledger = await LedgerSim.start({ flavour: mode.flavour });
    gw = await startTestGateway({
      devices: [{ id: 'n1', kind: 'metering-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transport.address } }],
      tools: [{ id: 'printer', node: 'n1', idleTimeoutMin: 60, warnBeforeOffS: 0 }],
      ledger: { ...ledgerConfig(mode, ledger), gatewayId: 'test-lab', batchSize: 7, timeoutMs: 1000, backoff: { initialMs: 50, maxMs: 400 }, alarm: { backlog: 5, ageS: 3600 } },
      billing,
      affiliates,
    });
    await waitFor(async () => (await gw.health()).devices[0]!.state === 'online');
  });

  afterAll(async () => {
    await gw?.stop();
    await transport?.close();
    await ledger?.close();
  });

  it('delivers each session and its charge as records, exactly once and in order', async () => {
    await session();
    await waitFor(async () => (await health()).backlog === 0 && outboxOf(gw.journal.db).length > 0);
    const rows = outboxOf(gw.journal.db);
    expect(rows.every((r) => r.state === 'delivered')).toBe(true);
    expectExactlyOnceInOrder(rows, ledger);
    expect(ledger.truth().records.map(kindOf)).toEqual(expect.arrayContaining(['process', 'economic-event:use', 'claim:transfer']));
  });

  it('holds the records while the ledger is down, says so in health, and delivers them all when it is back', async () => {
    await ledger.refuse(true);
    for (let i = 0; i < 3; i++) await session();
    await waitFor(async () => (await health()).backlog > 5);
    const h = (await gw.health()) as unknown as { status: string; ledger: { alarm: string | null } };
    expect(h.status).toBe('degraded');
    expect(h.ledger.alarm).toMatch(/records wait for the ledger/);
    await ledger.refuse(false);
    await waitFor(async () => (await health()).backlog === 0, 15_000);
    expectExactlyOnceInOrder(outboxOf(gw.journal.db), ledger);
  });

  it('answers lost after the ledger committed (and 5xx, 429) are resolved by id: still exactly once', async () => {
    ledger.commitThenDrop(2);
    ledger.status5xx(1);
    for (let i = 0; i < 2; i++) await session();
    await waitFor(async () => (await health()).backlog === 0, 15_000);
    expect(ledger.faultState.commitThenDrop).toBeLessThan(2); // the ledger committed and hung up at least once
    ledger.tooMany(1, 1);
    await session();
    await waitFor(async () => (await health()).backlog === 0, 15_000);
    expect(ledger.faultState.tooMany).toBe(0);
    await ledger.clearFaults();
    expectExactlyOnceInOrder(outboxOf(gw.journal.db), ledger);
  });

  it('a record the ledger refuses becomes a dead letter (with those that depend on it), in health and the API; retried once fixed, they arrive', async () => {
    ledger.reject(1, 'provider: unknown agent affiliate:ada');
    await session();
    await waitFor(async () => (await health()).deadLetters > 0 && (await health()).backlog === 0);
    const dead = (await (await gw.fetch(`${gw.url}/api/ledger/dead-letters`)).json()) as { recordId: string; lastError: string }[];
    expect(dead[0]!.lastError).toContain('unknown agent affiliate:ada');
    for (const d of dead) expect(ledger.countOf(d.recordId)).toBe(0);
    expect(((await gw.health()) as unknown as { status: string }).status).toBe('degraded');
    // fixed at the ledger: the custodian puts them back in their queues
    const res = await gw.fetch(`${gw.url}/api/ledger/dead-letters/retry`, { method: 'POST' });
    expect(await res.json()).toEqual({ retried: dead.length });
    await waitFor(async () => (await health()).deadLetters === 0 && (await health()).backlog === 0);
    const rows = outboxOf(gw.journal.db);
    for (const r of rows) expect(ledger.countOf(r.record_id)).toBe(1);
    expect(ledger.truth().records.length).toBe(rows.length);
  });

  it('reconciles with the ledger after all that: the same records and totals on both sides', async () => {
    const outbox = new Outbox(gw.journal, { gatewayId: 'test-lab', currency: 'CAD', minorUnit: 2 });
    const transport = transportOf(mode, ledger, 'test-lab');
    const [from, to] = [new Date(Date.now() - 86_400_000).toISOString(), new Date(Date.now() + 60_000).toISOString()];
    const r = await reconcile(outbox, transport, from, to);
    expect(r.gateway.records).toBeGreaterThan(20);
    expect(r.differences).toEqual([]);
    // a record lost at the ledger shows up as a difference
    ledger.store.db.prepare('DELETE FROM records WHERE seq = (SELECT MAX(seq) FROM records WHERE record_id IS NOT NULL)').run();
    expect((await reconcile(outbox, transport, from, to)).differences).not.toEqual([]);
  });
});

describe.each([JSON_API, MODES.find((m) => m.flavour === 'hrea')!])('a gateway killed while it drains: $name', (mode) => {
  // two gateway starts, four sessions, a kill and a drain: a loaded machine needs the time
  it('loses nothing and duplicates nothing at the ledger', { timeout: 90_000 }, async () => {
    const dir = tempDir('ledger-crash');
    const node = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 100, powerW: 200, timeScale: 60 });
    const transport = await serveTcp(node, '127.0.0.1', 0);
    const ledger = await LedgerSim.start({ flavour: mode.flavour });
    const httpPort = await freePort();
    writeFileSync(
      join(dir, 'lab.yaml'),
      JSON.stringify({
        gateway: { dataDir: 'data', log: { format: 'json' } },
        devices: [{ id: 'n1', kind: 'metering-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transport.address, reconnect: { initialMs: 50, maxMs: 500 } } }],
        tools: [{ id: 'printer', node: 'n1', idleTimeoutMin: 60, warnBeforeOffS: 0 }],
        ledger: { ...ledgerConfig(mode, ledger), gatewayId: 'test-lab', batchSize: 2, timeoutMs: 2000, backoff: { initialMs: 50, maxMs: 200 } },
        billing,
        affiliates,
      }),
    );
    const journalFile = join(dir, 'data', 'journal.sqlite');
    const read = <T>(fn: (db: Database.Database) => T): T => {
      const db = new Database(journalFile, { readonly: true, fileMustExist: true });
      try {
        return fn(db);
      } finally {
        db.close();
      }
    };
    let child: ChildProcessWithoutNullStreams | null = null;
    const up = async () => {
      const auth = adminHeaders(join(dir, 'data'));
      const c = spawn(process.execPath, [join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js'), 'run', '--config', join(dir, 'lab.yaml'), '--http-port', String(httpPort)], { stdio: 'pipe' });
      c.stdout.resume();
      c.stderr.resume();
      child = c;
      await waitFor(async () => ((await (await fetch(`http://127.0.0.1:${httpPort}/api/health`, auth)).json()) as { devices: { state: string }[] }).devices[0]?.state === 'online', 20_000);
    };
    const kill = async () => {
      const c = child!;
      const exited = once(c, 'exit');
      c.kill('SIGKILL');
      await exited;
    };
    try {
      await up();
      // Slow answers: a kill lands while batches are in flight.
      ledger.slow(150);
      for (let i = 0; i < 4; i++) {
        const before = read((db) => db.prepare(`SELECT COUNT(*) FROM events WHERE kind = 'billing.charge'`).pluck().get() as number);
        node.badge(ADA);
        await new Promise((r) => setTimeout(r, 300));
        node.badge(ADA);
        await waitFor(() => read((db) => db.prepare(`SELECT COUNT(*) FROM events WHERE kind = 'billing.charge'`).pluck().get() as number) === before + 1, 20_000);
      }
      await waitFor(() => ledger.truth().records.length > 0);
      await kill();
      const pendingAtKill = read((db) => outboxOf(db).filter((r) => r.state === 'pending').length);
      expect(pendingAtKill).toBeGreaterThan(0);
      ledger.slow(0);
      await up();
      await waitFor(() => read((db) => outboxOf(db).every((r) => r.state === 'delivered')), 20_000);
      expectExactlyOnceInOrder(read(outboxOf), ledger);
    } finally {
      if (child && (child as ChildProcessWithoutNullStreams).exitCode === null) await kill();
      await transport.close();
      await ledger.close();
    }
  });
});
