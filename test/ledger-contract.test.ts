/**
 * The same contract for every ledger transport, against the simulated ledger on a loopback
 * port (its own SQLite database, faults on demand; GraphQL executed against the published schema
 * of each flavour): what each reply means for the records, and that a record is held once
 * whatever happens on the way.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FLAVOUR_NAMES, type Flavour } from '../ledger-client/src/flavours.js';
import { GraphqlTransport } from '../ledger-client/src/graphql.js';
import { JsonBatchTransport } from '../ledger-client/src/json-batch.js';
import { recordsFor } from '../ledger-client/src/mapping.js';
import { totalsOf } from '../ledger-client/src/totals.js';
import type { ClaimRecord, EconomicEventRecord, LedgerRecord, LedgerTransport } from '../ledger-client/src/types.js';
import { readRecordMarker } from '../ledger-client/src/vf-documents.js';
import { LedgerSim } from '../simulators/src/ledger/ledger-sim.js';
import type { VfObject } from '../simulators/src/ledger/ledger-store.js';
import { tempDir } from './helpers.js';
import { CTX, exampleEvents } from './ledger-example.js';

const TOKEN = 'test-token-0123';

interface Api {
  name: string;
  flavour?: Flavour;
  make(sim: LedgerSim, opts?: { timeoutMs?: number; token?: string; ids?: Map<string, string> }): LedgerTransport;
}

const graphql = (flavour: Flavour): Api => ({
  name: `GraphQL (${flavour})`,
  flavour,
  make: (sim, o) => new GraphqlTransport({ url: `${sim.url}/graphql`, flavour, gatewayId: CTX.gatewayId, token: o?.token ?? TOKEN, timeoutMs: o?.timeoutMs ?? 5000, ids: o?.ids }),
});

const apis: Api[] = [{ name: 'JSON batch', make: (sim, o) => new JsonBatchTransport({ url: sim.url, token: o?.token ?? TOKEN, timeoutMs: o?.timeoutMs ?? 5000 }) }, ...FLAVOUR_NAMES.map(graphql)];

/** A fresh session's records (its own day of November 2026, counted from 1 for each ledger): process, use, consume, work, 7 claims, 1 correction. */
let nextDay = 1;
function session(): { records: LedgerRecord[]; day: string } {
  const day = nextDay++;
  const e = exampleEvents(day);
  return { records: [e.ended, e.charge, e.correction].flatMap((x) => recordsFor(x, CTX)), day: `2026-11-${String(day).padStart(2, '0')}` };
}

const kinds = (outcomes: { kind: string }[]) => outcomes.map((o) => o.kind);

describe.each(apis)('ledger contract: $name', ({ make, flavour }) => {
  let sim: LedgerSim;
  let ledger: LedgerTransport;
  const ids = new Map<string, string>();

  beforeAll(async () => {
    nextDay = 1;
    sim = await LedgerSim.start({ db: `${tempDir('ledger-sim')}/ledger.sqlite`, token: TOKEN, flavour });
    ledger = make(sim, { ids });
  });
  afterEach(async () => {
    await sim.clearFaults();
  });
  afterAll(async () => {
    await sim?.close();
  });

  it('delivers records, each held once, with the references they name', async () => {
    const { records } = session();
    const outcomes = await ledger.send(records);
    expect(outcomes).toEqual(records.map((r) => ({ kind: 'delivered', id: r.id })));
    for (const r of records) expect(sim.countOf(r.id)).toBe(1);
    const held = sim.truth().records.find((s) => s.id === records[1]!.id)!;
    if (held.via === 'json') {
      expect(held.record).toMatchObject({ type: 'economic-event', action: 'use', inputOf: records[0]!.id, effortQuantity: { hasNumericalValue: 1.666639, hasUnit: 'om2:hour' }, created: records[1]!.created });
    } else {
      // The server's own ids: the use is an input of the process as the server named it, in its units.
      const unit = sim.store.object((held.record.effortQuantity as { hasUnit: string }).hasUnit)!;
      expect(held.record).toMatchObject({ __typename: 'EconomicEvent', action: 'use', inputOf: ids.get(records[0]!.id) });
      expect(Number((held.record.effortQuantity as { hasNumericalValue: unknown }).hasNumericalValue)).toBe(1.666639);
      expect(unit).toMatchObject({ __typename: 'Unit', symbol: 'h' });
      expect(readRecordMarker(held.record.note)).toEqual({ gatewayId: 'lab-1', id: records[1]!.id, created: records[1]!.created });
    }
    const never = session().records[0]!;
    expect(await ledger.lookup([records[0]!, records[5]!, never])).toEqual(new Set([records[0]!.id, records[5]!.id]));
  });

  it('answers a record sent again as delivered and still holds it once', async () => {
    const { records } = session();
    await ledger.send(records);
    const again = await ledger.send(records);
    expect(kinds(again).every((k) => k === 'delivered')).toBe(true);
    for (const r of records) {
      expect(sim.countOf(r.id)).toBe(1);
      // The JSON API deduplicates what arrives again; GraphQL servers do not, so the client never sends it.
      expect(sim.receivedOf(r.id)).toBe(flavour ? 1 : 2);
    }
  });

  it('refuses a record as permanent with the ledger’s message, and those that name it with it; sent again once fixed, they are taken', async () => {
    const { records } = session();
    sim.reject(1, 'provider: unknown agent custodian:lab-1');
    const outcomes = await ledger.send(records);
    expect(outcomes[0]).toEqual({ kind: 'permanent', id: records[0]!.id, message: expect.stringContaining('unknown agent custodian:lab-1') });
    expect(outcomes.every((o) => o.kind === 'permanent')).toBe(true);
    expect(records.every((r) => sim.countOf(r.id) === 0)).toBe(true);
    expect(kinds(await ledger.send(records))).toEqual(records.map(() => 'delivered'));
  });

  it('refuses a record that names a unit no ledger knows, naming the unit', async () => {
    const { records } = session();
    const bad = { ...(records[5] as ClaimRecord), resourceQuantity: { hasNumericalValue: 3.15, hasUnit: 'om2:furlong' } } as unknown as LedgerRecord;
    const outcomes = await ledger.send([...records.slice(0, 5), bad, ...records.slice(6)]);
    expect(outcomes[5]).toMatchObject({ kind: 'permanent', id: bad.id, message: expect.stringMatching(/om2:furlong|resourceQuantity\.hasUnit/) });
    expect(kinds(outcomes.filter((_, i) => i !== 5)).every((k) => k === 'delivered')).toBe(true);
    expect(sim.countOf(bad.id)).toBe(0);
  });

  it('retries on a 5xx, and delivers once the ledger is back', async () => {
    const { records } = session();
    sim.status5xx(1, 503);
    const outcomes = await ledger.send(records);
    expect(outcomes.every((o) => o.kind === 'retry' && o.message.includes('HTTP 503'))).toBe(true);
    expect(records.every((r) => sim.countOf(r.id) === 0)).toBe(true);
    expect(kinds(await ledger.send(records)).every((k) => k === 'delivered')).toBe(true);
  });

  it('retries on 429 after what Retry-After says', async () => {
    const { records } = session();
    sim.tooMany(1, 7);
    const outcomes = await ledger.send(records);
    expect(outcomes).toEqual(records.map((r) => ({ kind: 'retry', id: r.id, message: expect.stringContaining('HTTP 429'), retryAfterMs: 7000 })));
  });

  it('retries when the connection is refused', async () => {
    const { records } = session();
    await sim.refuse(true);
    // A kept-alive connection the ledger just cut may take the first request (an unknown outcome);
    // from then on every connection is refused.
    expect(kinds(await ledger.send(records)).every((k) => k === 'retry')).toBe(true);
    const outcomes = await ledger.send(records);
    expect(outcomes.every((o) => o.kind === 'retry' && o.message.includes('refused the connection'))).toBe(true);
    await expect(ledger.lookup([records[0]!])).rejects.toMatchObject({ verdict: { kind: 'retry' } });
    await sim.refuse(false);
    expect(kinds(await ledger.send(records)).every((k) => k === 'delivered')).toBe(true);
  });

  it('retries when the answer is slower than the timeout; looked up, then sent, each is held once', async () => {
    const { records } = session();
    sim.slow(1500);
    const hurried = make(sim, { timeoutMs: 300, ids });
    const outcomes = await hurried.send(records);
    expect(outcomes.every((o) => o.kind === 'retry' && o.message.includes('no answer') && o.message.includes('300 ms'))).toBe(true);
    sim.slow(0);
    await new Promise((r) => setTimeout(r, 1500)); // the slow request is handled meanwhile
    const held = await ledger.lookup(records);
    expect(kinds(await ledger.send(records.filter((r) => !held.has(r.id)))).every((k) => k === 'delivered')).toBe(true);
    for (const r of records) expect(sim.countOf(r.id)).toBe(1);
  });

  it('retries when the ledger commits and drops the connection; a lookup then finds what it holds, and the rest is sent once', async () => {
    const { records } = session();
    sim.commitThenDrop(1);
    const outcomes = await ledger.send(records);
    expect(outcomes.every((o) => o.kind === 'retry' && o.message.includes('outcome is unknown'))).toBe(true);
    const committed = records.filter((r) => sim.countOf(r.id) === 1).map((r) => r.id);
    expect(committed.length).toBeGreaterThan(0);
    const held = await ledger.lookup(records);
    expect(held).toEqual(new Set(committed));
    expect(kinds(await ledger.send(records)).every((k) => k === 'delivered')).toBe(true);
    for (const r of records) expect(sim.countOf(r.id)).toBe(1);
  });

  it('keeps records waiting, not refused, when the token is wrong', async () => {
    const { records } = session();
    const outcomes = await make(sim, { token: 'wrong' }).send(records);
    expect(outcomes.every((o) => o.kind === 'retry' && o.message.includes('HTTP 401') && o.message.includes('ledger.token'))).toBe(true);
  });

  it('reports totals that add up to what was sent, money to the cent', async () => {
    const { records, day } = session();
    await ledger.send(records);
    const totals = await ledger.totals(`${day}T00:00:00.000Z`, `${day}T23:59:59.999Z`);
    expect(totals).toEqual(totalsOf(records));
    // 16.84 charged, then 7.50 more for the technician; 1 process, 3 events, 8 claims.
    expect(totals).toEqual({
      records: 12,
      sums: {
        'claim:transfer:iso4217:CAD': 24.34,
        'economic-event:consume:om2:gram': 44.7,
        'economic-event:use:om2:hour': 1.666639,
        'economic-event:work:om2:minute': 12,
      },
    });
    expect(await ledger.totals(`${day}T00:00:00.000Z`, `${day}T15:40:00.000Z`)).toEqual({ records: 0, sums: {} });
  });
});

describe('GraphQL: what the server holds of the gateway', () => {
  let sim: LedgerSim;
  beforeAll(async () => {
    nextDay = 1;
    sim = await LedgerSim.start({ flavour: 'hrea' });
  });
  afterAll(async () => {
    await sim?.close();
  });
  const objects = (typename: string) => sim.store.list([typename], {}, 10_000).map((r) => r.object);

  it('money owed on hREA is a Commitment to transfer, to the fund, in the currency, with our id and correction link in its note', async () => {
    const ids = new Map<string, string>();
    const ledger = new GraphqlTransport({ url: `${sim.url}/graphql`, flavour: 'hrea', gatewayId: 'lab-1', ids });
    const { records } = session();
    expect(kinds(await ledger.send(records)).every((k) => k === 'delivered')).toBe(true);
    const correction = records.at(-1) as ClaimRecord;
    const held = sim.store.object(ids.get(correction.id)!)!;
    expect(held).toMatchObject({ __typename: 'Commitment', action: 'transfer', provider: ids.get('affiliate:farah'), receiver: ids.get('fund:technician'), resourceConformsTo: ids.get('spec:currency:CAD'), resourceQuantity: { hasNumericalValue: '7.5', hasUnit: ids.get('iso4217:CAD') } });
    expect(readRecordMarker(held.note)).toEqual({ gatewayId: 'lab-1', id: correction.id, created: correction.created, corrects: correction.corrects });
    expect(sim.store.object(ids.get('affiliate:farah')!)).toMatchObject({ __typename: 'Person', name: 'farah', note: '[ovn-gateway affiliate:farah]' });
    expect(sim.store.object(ids.get('fund:printer:maintenance')!)).toMatchObject({ __typename: 'Organization', name: 'maintenance fund of printer' });
  });

  it('finds the agents, units and specifications it made before, rather than making them twice', async () => {
    const counts = () => ['Person', 'Organization', 'Unit', 'ResourceSpecification'].map((t) => objects(t).length);
    const before = counts();
    expect(before.every((n) => n > 0)).toBe(true);
    // A gateway whose map is empty (a new journal) on the same ledger.
    const ids = new Map<string, string>();
    const ledger = new GraphqlTransport({ url: `${sim.url}/graphql`, flavour: 'hrea', gatewayId: 'lab-1', ids });
    expect(kinds(await ledger.send(session().records)).every((k) => k === 'delivered')).toBe(true);
    expect(counts()).toEqual(before);
  });

  it('refuses a record that names one the ledger does not hold, rather than keeping its tool waiting', async () => {
    const ledger = new GraphqlTransport({ url: `${sim.url}/graphql`, flavour: 'hrea', gatewayId: 'lab-1' });
    const { records } = session();
    expect(await ledger.send([records[1]!])).toEqual([{ kind: 'permanent', id: records[1]!.id, message: expect.stringContaining('which the ledger does not hold') }]);
  });

  it('hREA refuses what its own rules refuse (a consume without a resource reference), with its message', async () => {
    const ledger = new GraphqlTransport({ url: `${sim.url}/graphql`, flavour: 'hrea', gatewayId: 'lab-1' });
    const [process, , consume] = session().records as [LedgerRecord, LedgerRecord, EconomicEventRecord];
    const bare = { ...consume, resourceConformsTo: undefined };
    const outcomes = await ledger.send([process, bare]);
    expect(outcomes[1]).toEqual({ kind: 'permanent', id: consume.id, message: 'event: EconomicEvent must reference an inventoried resource, resource specification or resource classification' });
    expect(objects('EconomicEvent').some((e) => readRecordMarker((e as VfObject).note)?.id === consume.id)).toBe(false);
  });
});
