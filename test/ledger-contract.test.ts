/**
 * The same contract for every ledger transport, against the simulated ledger on a loopback
 * port (its own SQLite database, faults on demand): what each reply means for the records,
 * and that a record is held once whatever happens on the way.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GraphqlTransport } from '../ledger-client/src/graphql.js';
import { JsonBatchTransport } from '../ledger-client/src/json-batch.js';
import { recordsFor } from '../ledger-client/src/mapping.js';
import { totalsOf } from '../ledger-client/src/totals.js';
import type { ClaimRecord, LedgerRecord, LedgerTransport } from '../ledger-client/src/types.js';
import { LedgerSim } from '../simulators/src/ledger/ledger-sim.js';
import { tempDir } from './helpers.js';
import { CTX, exampleEvents } from './ledger-example.js';

const TOKEN = 'test-token-0123';

interface Flavour {
  name: string;
  make(sim: LedgerSim, opts?: { timeoutMs?: number; token?: string }): LedgerTransport;
}

const transports: Flavour[] = [
  { name: 'JSON batch', make: (sim, o) => new JsonBatchTransport({ url: sim.url, token: o?.token ?? TOKEN, timeoutMs: o?.timeoutMs ?? 5000 }) },
  { name: 'GraphQL (vf-graphql)', make: (sim, o) => new GraphqlTransport({ url: `${sim.url}/graphql`, flavour: 'vf-graphql', token: o?.token ?? TOKEN, timeoutMs: o?.timeoutMs ?? 5000 }) },
];

/** A fresh session's records (its own day of November 2026): process, use, consume, work, 7 claims, 1 correction. */
let nextDay = 1;
function session(): { records: LedgerRecord[]; day: string } {
  const day = nextDay++;
  const e = exampleEvents(day);
  return { records: [e.ended, e.charge, e.correction].flatMap((x) => recordsFor(x, CTX)), day: `2026-11-${String(day).padStart(2, '0')}` };
}

const kinds = (outcomes: { kind: string }[]) => outcomes.map((o) => o.kind);

describe.each(transports)('ledger contract: $name', ({ make }) => {
  let sim: LedgerSim;
  let ledger: LedgerTransport;

  beforeAll(async () => {
    sim = await LedgerSim.start({ db: `${tempDir('ledger-sim')}/ledger.sqlite`, token: TOKEN });
    ledger = make(sim);
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
    const held = sim.truth().records.find((s) => s.id === records[1]!.id)!.record;
    expect(held).toMatchObject({ type: 'economic-event', action: 'use', inputOf: records[0]!.id, effortQuantity: { hasNumericalValue: 1.666639, hasUnit: 'om2:hour' }, created: records[1]!.created });
    expect(await ledger.lookup([records[0]!.id, records[5]!.id, 'never-sent'])).toEqual(new Set([records[0]!.id, records[5]!.id]));
  });

  it('answers a duplicate send as delivered and still holds each record once', async () => {
    const { records } = session();
    await ledger.send(records);
    const again = await ledger.send(records);
    expect(kinds(again).every((k) => k === 'delivered')).toBe(true);
    for (const r of records) {
      expect(sim.countOf(r.id)).toBe(1);
      expect(sim.receivedOf(r.id)).toBe(2);
    }
  });

  it('refuses an invalid record as permanent, with the ledger’s message naming the field, and takes the others', async () => {
    const { records } = session();
    const bad = { ...(records[5] as ClaimRecord), resourceQuantity: { hasNumericalValue: 3.15, hasUnit: 'om2:furlong' } } as unknown as LedgerRecord;
    const outcomes = await ledger.send([...records.slice(0, 5), bad, ...records.slice(6)]);
    expect(outcomes[5]).toMatchObject({ kind: 'permanent', id: bad.id, message: expect.stringContaining('resourceQuantity.hasUnit') });
    expect(kinds(outcomes.filter((_, i) => i !== 5)).every((k) => k === 'delivered')).toBe(true);
    expect(sim.countOf(bad.id)).toBe(0);
    // A record that names one the ledger does not hold is refused too.
    const orphan = { ...records[2]!, id: 'orphan-consume', inputOf: 'no-such-process' } as LedgerRecord;
    expect(await ledger.send([orphan])).toEqual([{ kind: 'permanent', id: 'orphan-consume', message: expect.stringContaining('inputOf: no process no-such-process') }]);
    // The same id with other content: the ledger keeps the first and refuses the second.
    const changed = { ...records[6]!, note: 'changed' } as LedgerRecord;
    expect(await ledger.send([changed])).toEqual([{ kind: 'permanent', id: changed.id, message: expect.stringContaining('already used by a different record') }]);
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
    await expect(ledger.lookup([records[0]!.id])).rejects.toMatchObject({ verdict: { kind: 'retry' } });
    await sim.refuse(false);
    expect(kinds(await ledger.send(records)).every((k) => k === 'delivered')).toBe(true);
  });

  it('retries when the answer is slower than the timeout, and a resend after it is stored once', async () => {
    const { records } = session();
    sim.slow(1500);
    const hurried = make(sim, { timeoutMs: 300 });
    const outcomes = await hurried.send(records);
    expect(outcomes.every((o) => o.kind === 'retry' && o.message.includes('no answer') && o.message.includes('300 ms'))).toBe(true);
    sim.slow(0);
    await new Promise((r) => setTimeout(r, 1500)); // the slow request is handled meanwhile
    expect(kinds(await ledger.send(records)).every((k) => k === 'delivered')).toBe(true);
    for (const r of records) expect(sim.countOf(r.id)).toBe(1);
  });

  it('retries when the ledger commits and drops the connection; a lookup then finds every record, held once', async () => {
    const { records } = session();
    sim.commitThenDrop(1);
    const outcomes = await ledger.send(records);
    expect(outcomes.every((o) => o.kind === 'retry' && o.message.includes('outcome is unknown'))).toBe(true);
    const ids = records.map((r) => r.id);
    expect(await ledger.lookup(ids)).toEqual(new Set(ids));
    expect(kinds(await ledger.send(records)).every((k) => k === 'delivered')).toBe(true);
    for (const id of ids) expect(sim.countOf(id)).toBe(1);
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

describe('GraphQL to a server that chooses its own ids (hREA, Bonfire)', () => {
  let sim: LedgerSim;
  beforeAll(async () => {
    sim = await LedgerSim.start();
  });
  afterAll(async () => {
    await sim?.close();
  });

  it('sends one record per request, points at the ids the server chose, and writes our id in the note', async () => {
    const ids = new Map<string, string>();
    const ledger = new GraphqlTransport({ url: `${sim.url}/graphql`, flavour: 'hrea', ids });
    const { records } = session();
    const outcomes = await ledger.send(records);
    expect(kinds(outcomes).every((k) => k === 'delivered')).toBe(true);
    expect(ids.size).toBe(records.length);
    const held = sim.truth().records.map((s) => s.record);
    const use = held.find((r) => r.id === ids.get(records[1]!.id))!;
    expect(use).toMatchObject({ action: 'use', inputOf: ids.get(records[0]!.id) });
    expect(use.note).toContain(`[ovn-gateway record ${records[1]!.id}; created ${records[1]!.created}]`);
    const correction = held.find((r) => r.id === ids.get(records.at(-1)!.id))!;
    expect(correction.note).toContain(`corrects ${ids.get((records.at(-1) as ClaimRecord).corrects!)}`);
    expect(await ledger.lookup(records.map((r) => r.id))).toEqual(new Set(records.map((r) => r.id)));
    await expect(ledger.totals('2026-11-01T00:00:00Z', '2026-12-01T00:00:00Z')).rejects.toMatchObject({ verdict: { kind: 'permanent' } });
  });

  it('keeps a record waiting when the server id of what it points at is unknown', async () => {
    const ledger = new GraphqlTransport({ url: `${sim.url}/graphql`, flavour: 'bonfire' });
    const { records } = session();
    expect(await ledger.send([records[1]!])).toEqual([{ kind: 'retry', id: records[1]!.id, message: expect.stringContaining('is not known here') }]);
  });
});
