/**
 * Journal events as Valueflows records: the README's example by hand, stable ids, exact
 * money, and the events the gateway's own billing writes (charges, corrections, pooling)
 * delivered in order to the simulated ledger, over each API it speaks.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Billing, type CorrectionChange } from '../gateway/src/billing/billing.js';
import { billingSchema } from '../gateway/src/billing/config.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { SessionStore } from '../gateway/src/sessions/session-store.js';
import { eventRecordId, sessionRecordId } from '../ledger-client/src/ids.js';
import { FLAVOUR_NAMES, type Flavour } from '../ledger-client/src/flavours.js';
import { GraphqlTransport } from '../ledger-client/src/graphql.js';
import { JsonBatchTransport } from '../ledger-client/src/json-batch.js';
import { majorUnits, MappingError, recordsFor, type JournalEventInput } from '../ledger-client/src/mapping.js';
import { formatMinor } from '../ledger-client/src/money.js';
import { totalsOf } from '../ledger-client/src/totals.js';
import type { ClaimRecord, LedgerRecord, LedgerTransport } from '../ledger-client/src/types.js';
import { LedgerSim } from '../simulators/src/ledger/ledger-sim.js';
import { recordSchema } from '../simulators/src/ledger/validation.js';
import { tempDir } from './helpers.js';
import { CTX, exampleEvents } from './ledger-example.js';

const ex = exampleEvents();
const sid = (role: string) => sessionRecordId('lab-1', '5b0c6d1e-0000-4000-8000-000000000024', role);

describe('where the filament came from, in the consume note', () => {
  const noteWith = (material: unknown) => {
    const ended = { ...ex.ended, data: { ...ex.ended.data, material } };
    return recordsFor(ended, CTX).find((r) => 'action' in r && r.action === 'consume')!.note;
  };

  it('says the source, its uncertainty, and what a custodian should check', () => {
    expect(noteWith({ source: 'file', uncertaintyMm: 0, flagged: null })).toBe('filament, extruder 0, from the G-code file');
    expect(noteWith({ source: 'printer-counter', uncertaintyMm: 30, flagged: null })).toBe("filament, extruder 0, from the printer's counter (± 30 mm)");
    expect(noteWith({ source: 'position-estimate', uncertaintyMm: null, flagged: 'no counter' })).toBe('filament, extruder 0, estimated from extruder positions; to be checked: no counter');
  });
});

describe('mapping the README example', () => {
  it('maps the session to a process, a use in hours, a consume per extruder that used material and the technician work', () => {
    const [process, use, consume, work, ...rest] = recordsFor(ex.ended, CTX);
    expect(rest).toEqual([]);
    const common = { created: '2026-11-24T15:40:00.120Z', toolId: 'printer', journalEventId: 24041 };
    const during = { hasBeginning: '2026-11-24T14:00:00.000Z', hasEnd: '2026-11-24T15:39:59.900Z' };
    expect(process).toEqual({
      id: sid('process'),
      type: 'process',
      ...common,
      name: 'Use of printer by farah',
      ...during,
      note: 'session 5b0c6d1e-0000-4000-8000-000000000024; commercial use; ended: badge-out; active 5400 s; energy 96.5 Wh',
    });
    const input = { type: 'economic-event', ...common, provider: 'custodian:lab-1', receiver: 'affiliate:farah', inputOf: sid('process'), ...during };
    // 5999.9 s = 1.666638… h, to the microhour.
    expect(use).toEqual({ id: sid('use'), ...input, action: 'use', resourceInventoriedAs: 'resource:printer', resourceConformsTo: 'spec:tool:printer', effortQuantity: { hasNumericalValue: 1.666639, hasUnit: 'om2:hour' } });
    expect(consume).toEqual({ id: sid('consume:0'), ...input, action: 'consume', resourceConformsTo: 'spec:material:printer', resourceQuantity: { hasNumericalValue: 44.7, hasUnit: 'om2:gram' }, note: 'filament, extruder 0' });
    expect(work).toEqual({ id: sid('work'), ...input, action: 'work', provider: 'affiliate:tomas', resourceConformsTo: 'spec:work:technician', effortQuantity: { hasNumericalValue: 12, hasUnit: 'om2:minute' }, note: 'technician help by tomas' });
  });

  it('maps the charge to one claim per part, from the affiliate to each fund and co-owner, triggered by the use', () => {
    const claims = recordsFor(ex.charge, CTX) as ClaimRecord[];
    expect(claims.map((c) => [c.receiver, c.resourceQuantity.hasNumericalValue, c.resourceQuantity.hasUnit])).toEqual([
      ['fund:material', 1.34, 'iso4217:CAD'],
      ['fund:technician', 5, 'iso4217:CAD'],
      ['fund:printer:maintenance', 3.15, 'iso4217:CAD'],
      ['fund:infrastructure', 2.1, 'iso4217:CAD'],
      ['affiliate:ada', 2.21, 'iso4217:CAD'],
      ['affiliate:bo', 1.66, 'iso4217:CAD'],
      ['affiliate:chen', 1.38, 'iso4217:CAD'],
    ]);
    for (const c of claims) {
      expect(c).toMatchObject({ type: 'claim', action: 'transfer', provider: 'affiliate:farah', resourceConformsTo: 'spec:currency:CAD', triggeredBy: sid('use'), created: '2026-11-24T15:40:00.120Z', toolId: 'printer', journalEventId: 24042 });
      expect(c.corrects).toBeUndefined();
    }
    expect(claims[0]!.note).toBe('material fund: commercial use of printer, session 5b0c6d1e-0000-4000-8000-000000000024 (usage 10.50 CAD, material 1.34 CAD, technician 5.00 CAD)');
    expect(claims[1]!.id).toBe(sid('claim:technician'));
    expect(totalsOf(claims).sums).toEqual({ 'claim:transfer:iso4217:CAD': 16.84 });
  });

  it('maps the correction to a claim for the difference that corrects the charge’s claim', () => {
    expect(recordsFor(ex.correction, CTX)).toEqual([
      {
        id: eventRecordId('lab-1', 24057, ex.correction.hash, 'claim:technician'),
        type: 'claim',
        created: '2026-11-24T18:02:13.500Z',
        toolId: 'printer',
        journalEventId: 24057,
        action: 'transfer',
        provider: 'affiliate:farah',
        receiver: 'fund:technician',
        resourceConformsTo: 'spec:currency:CAD',
        resourceQuantity: { hasNumericalValue: 7.5, hasUnit: 'iso4217:CAD' },
        triggeredBy: sid('use'),
        corrects: sid('claim:technician'),
        note: 'technician fund: correction of the charge (journal event 24042): technician time set to 30 min; Tomas helped with the bed levelling for half an hour (by custodian)',
      },
    ]);
  });

  it('gives a part the charge owed nothing on a claim of its own, and a void negative claims for every part', () => {
    const data = ex.correction.data as { after: { parts: { account: string; amount: number }[] } };
    const material = { ...ex.correction, data: { ...ex.correction.data, change: { kind: 'material', filamentG: 0 }, delta: [{ account: 'material', amount: -134 }, { account: 'technician', amount: 0 }] } };
    const [m] = recordsFor(material, CTX) as ClaimRecord[];
    expect(m).toMatchObject({ receiver: 'fund:material', resourceQuantity: { hasNumericalValue: -1.34 }, corrects: sid('claim:material') });
    // After a correction to 0 g, another one back to 10 g: the session owed nothing on material just before it.
    const back = {
      ...ex.correction,
      data: { ...ex.correction.data, change: { kind: 'material', filamentG: 10 }, after: { ...(ex.correction.data.after as object), parts: data.after.parts.map((p) => (p.account === 'material' ? { ...p, amount: 30 } : p)) }, delta: [{ account: 'material', amount: 30 }] },
    };
    expect((recordsFor(back, CTX)[0] as ClaimRecord).corrects).toBeUndefined();
    const voided = { ...ex.correction, data: { ...ex.correction.data, change: { kind: 'void' }, after: { useType: 'commercial', inputs: null, price: null, parts: [] }, delta: data.after.parts.map((p) => ({ ...p, amount: -p.amount })) } };
    const claims = recordsFor(voided, CTX) as ClaimRecord[];
    expect(claims).toHaveLength(7);
    expect(claims.every((c) => c.corrects === sid(`claim:${c.receiver === 'affiliate:ada' ? 'co-owner:ada' : c.receiver === 'affiliate:bo' ? 'co-owner:bo' : c.receiver === 'affiliate:chen' ? 'co-owner:chen' : c.receiver.replace(/^fund:(printer:)?/, '')}`))).toBe(true);
    expect(totalsOf(claims).sums['claim:transfer:iso4217:CAD']).toBe(-24.34);
  });

  it('notes the value of a use with no cash charge on a zero-hour use that corrects the session’s, and owes nothing', () => {
    const valued = { ...ex.charge, data: { ...ex.charge.data, useType: 'project', price: { billedMin: 105, usage: 1050, material: 0, technician: 500, total: 1550, cash: false } } };
    const [note, ...rest] = recordsFor(valued, CTX);
    expect(rest).toEqual([]);
    expect(note).toMatchObject({ type: 'economic-event', action: 'use', effortQuantity: { hasNumericalValue: 0, hasUnit: 'om2:hour' }, corrects: sid('use'), inputOf: sid('process'), hasPointInTime: ex.charge.at });
    expect((note as { note: string }).note).toMatch(/^valued project use: 15\.50 CAD, not owed; split material fund 1\.34, technician fund 5\.00, maintenance fund 3\.15/);
    expect(recordsFor({ ...valued, data: { ...valued.data, price: { ...valued.data.price, usage: 0, technician: 0, total: 0 } } }, CTX)).toEqual([]);
  });

  it('maps pooling to a transfer of the tool from its co-owners to the custodian', () => {
    const pooled: JournalEventInput = {
      id: 90,
      hash: 'f'.repeat(64),
      at: '2027-03-02T10:00:00.000Z',
      kind: 'tool.pooled',
      deviceId: 'printer',
      data: { sessionId: 's-last', chargeEventId: 89, multiplier: '1.2', coOwners: [{ affiliateId: 'ada', contribution: 80000, cap: 96000 }] },
    };
    expect(recordsFor(pooled, CTX)).toEqual([
      {
        id: eventRecordId('lab-1', 90, 'f'.repeat(64), 'pool'),
        type: 'economic-event',
        created: '2027-03-02T10:00:00.000Z',
        toolId: 'printer',
        journalEventId: 90,
        action: 'transfer',
        provider: 'co-owners:printer',
        receiver: 'custodian:lab-1',
        resourceInventoriedAs: 'resource:printer',
        resourceConformsTo: 'spec:tool:printer',
        resourceQuantity: { hasNumericalValue: 1, hasUnit: 'om2:one' },
        hasPointInTime: '2027-03-02T10:00:00.000Z',
        note: 'pool of shareables: session s-last repaid the last co-owner; every co-owner received 1.2 × their contribution (CAD): ada (contributed 800.00, repaid 960.00)',
      },
    ]);
  });

  it('maps nothing for other kinds, and refuses an event it cannot read, naming the field', () => {
    for (const kind of ['session.started', 'access.decision', 'billing.period-closed', 'gateway.started']) expect(recordsFor({ ...ex.ended, kind }, CTX)).toEqual([]);
    expect(() => recordsFor({ ...ex.charge, data: { ...ex.charge.data, parts: [{ account: 'material', amount: 1.5 }] } }, CTX)).toThrow(MappingError);
    expect(() => recordsFor({ ...ex.charge, data: { ...ex.charge.data, parts: [{ account: 'material', amount: 1.5 }] } }, CTX)).toThrow(/journal event 24042 \(billing\.charge\): data\.parts\.0\.amount/);
    expect(() => recordsFor({ ...ex.ended, deviceId: null, data: { ...ex.ended.data, toolId: undefined } }, CTX)).toThrow(/names no tool/);
  });

  it('makes records the simulated ledger accepts as they are', () => {
    for (const r of [ex.ended, ex.charge, ex.correction].flatMap((e) => recordsFor(e, CTX))) expect(recordSchema.safeParse(r).success).toBe(true);
  });
});

describe('stable ids', () => {
  const all = (e: { ended: JournalEventInput; charge: JournalEventInput; correction: JournalEventInput }, ctx = CTX) => [e.ended, e.charge, e.correction].flatMap((x) => recordsFor(x, ctx)).map((r) => r.id);

  it('gives the same event the same ids, always (pinned: a change would make the ledger take old records as new)', () => {
    expect(all(exampleEvents())).toEqual(all(JSON.parse(JSON.stringify(exampleEvents())) as ReturnType<typeof exampleEvents>));
    expect(sid('process')).toBe('85037c93-b21d-5049-b0c0-80ac5f86acec');
    expect(sid('use')).toBe('0bc7315d-1d11-598e-b0c7-1c54c2525c57');
    expect(eventRecordId('lab-1', 24057, ex.correction.hash, 'claim:technician')).toBe('b7723acb-4582-54c1-9862-ee51fe8af816');
    expect(sid('use')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('gives different ids to another hash or another id of a correction or pooling event', () => {
    const ids = (e: JournalEventInput) => recordsFor(e, CTX).map((r) => r.id);
    const c = ex.correction;
    expect(ids({ ...c, hash: '1'.repeat(64) })).not.toEqual(ids(c));
    expect(ids({ ...c, id: c.id + 1 })).not.toEqual(ids(c));
    expect(new Set([...ids(c), ...ids({ ...c, hash: '1'.repeat(64) })]).size).toBe(2);
  });

  it('anchors the records of a session at the session: another session or gateway gives other ids, another hash the same', () => {
    const a = all(exampleEvents(24));
    const b = all(exampleEvents(25));
    expect(new Set([...a, ...b]).size).toBe(a.length + b.length);
    expect(new Set([...a, ...all(exampleEvents(24), { ...CTX, gatewayId: 'lab-2' })]).size).toBe(2 * a.length);
    const rehashed = recordsFor({ ...ex.ended, hash: '2'.repeat(64), id: 7 }, CTX).map((r) => r.id);
    expect(rehashed).toEqual(recordsFor(ex.ended, CTX).map((r) => r.id));
  });

  it('never gives two records of a journal the same id', () => {
    const ids = Array.from({ length: 20 }, (_, i) => all(exampleEvents(i + 1))).flat();
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('money', () => {
  /** The exact decimal a JSON number stands for, as minor units. */
  const minorOf = (v: number, mu: number) => {
    const [int, frac = ''] = JSON.stringify(Math.abs(v)).split('.');
    expect(frac.length).toBeLessThanOrEqual(mu);
    return Math.sign(v) * Number(BigInt(int! + frac.padEnd(mu, '0')));
  };

  it('writes every amount as the exact decimal of its minor units, in every currency', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(10 ** 14), max: 10 ** 14 }), fc.integer({ min: 0, max: 4 }), (minor, mu) => {
        const v = majorUnits(minor, mu);
        expect(JSON.stringify(v)).toBe(formatMinor(minor, mu).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, ''));
        expect(minorOf(v, mu)).toBe(minor);
      }),
    );
  });

  it('adds up claims to the cent, however many', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -1_000_000, max: 1_000_000 }), { minLength: 1, maxLength: 200 }), (amounts) => {
        const claims = amounts.map((a, i): LedgerRecord => ({ id: `c${i}`, type: 'claim', created: ex.charge.at, toolId: 't', journalEventId: i, action: 'transfer', provider: 'a', receiver: 'b', triggeredBy: 'u', resourceConformsTo: 'spec:currency:CAD', resourceQuantity: { hasNumericalValue: majorUnits(a, 2), hasUnit: 'iso4217:CAD' } }));
        const sum = totalsOf(claims).sums['claim:transfer:iso4217:CAD']!;
        expect(minorOf(sum, 2)).toBe(amounts.reduce((x, y) => x + y, 0));
      }),
    );
  });
});

/** Each API the simulated ledger speaks: the JSON batch API and GraphQL in every flavour. */
const apis: { name: string; flavour?: Flavour }[] = [{ name: 'JSON batch' }, ...FLAVOUR_NAMES.map((flavour) => ({ name: `GraphQL (${flavour})`, flavour }))];

describe.each(apis)('the gateway’s own billing events, delivered to the simulated ledger: $name', ({ flavour }) => {
  let sim: LedgerSim;
  beforeAll(async () => {
    sim = await LedgerSim.start({ flavour });
  });
  afterAll(async () => {
    await sim?.close();
  });

  it('are all accepted in journal order, and the ledger’s money is the statements’ money to the cent', async () => {
    const config = billingSchema.parse({
      currency: 'CAD',
      technicianRate: '25.00',
      technicians: ['tomas'],
      materials: { PLA: { pricePerGram: '0.031' } },
      tools: {
        printer: {
          material: 'PLA',
          tariffs: {
            commercial: { hourlyRate: '6.35', incrementMin: 15, minimumCharge: '2.00', split: { maintenance: 33, infrastructure: 17, payback: 50 } },
            project: { hourlyRate: '6.00', cash: false },
          },
          coOwnership: { coOwners: [{ affiliate: 'ada', contribution: '7.00' }, { affiliate: 'bo', contribution: '3.33' }] },
        },
      },
    });
    const journal = Journal.open(tempDir('ledger-map'));
    try {
      const billing = new Billing(config, journal);
      const store = new SessionStore(journal, billing);
      const sessions = Array.from({ length: 12 }, (_, i) => ({
        sessionId: `s${i}`,
        toolId: 'printer',
        affiliateId: i % 3 === 0 ? 'ada' : 'di',
        useType: i % 4 === 3 ? 'project' : 'commercial',
        startedAt: `2026-11-${10 + i}T10:00:00.000Z`,
        endedAt: `2026-11-${10 + i}T11:47:12.300Z`,
        clockSynced: { start: true, end: true },
        durationS: 6432.3,
        activeS: 6000,
        energyWh: 80.25,
        filament: [{ extruder: 0, mm: 3000 + i * 100, g: 8.941 + i }],
        filamentMm: 3000 + i * 100,
        filamentG: 8.941 + i,
        technicianMin: i % 2 ? 7 : 0,
        technicians: i % 2 ? ['tomas'] : [],
        reason: 'badge-out',
      }));
      for (const s of sessions) store.close('printer', [s]);
      const changes: [string, CorrectionChange][] = [
        ['s1', { kind: 'technician', technicianMin: 30 }],
        ['s2', { kind: 'material', filamentG: 0 }],
        ['s2', { kind: 'material', filamentG: 5 }],
        ['s3', { kind: 'use-type', useType: 'commercial' }],
        ['s4', { kind: 'void' }],
        ['s5', { kind: 'use-type', useType: 'project' }],
      ];
      for (const [s, change] of changes) billing.correct(s, change, 'checked against the print log', 'custodian');

      const events = journal.db.prepare('SELECT id, at, kind, device_id AS deviceId, data, hash FROM events ORDER BY id').all() as (Omit<JournalEventInput, 'data'> & { data: string })[];
      const mapped = events.map((e) => ({ ...e, data: JSON.parse(e.data) as Record<string, unknown> }));
      expect(mapped.some((e) => e.kind === 'tool.pooled')).toBe(true);
      const records = mapped.flatMap((e) => recordsFor(e, CTX));
      const correctionIds = new Set(mapped.filter((e) => e.kind === 'billing.correction').map((e) => e.id));
      const corrections = records.filter((r) => r.type === 'claim' && correctionIds.has(r.journalEventId));
      expect(corrections.filter((r) => r.type === 'claim' && r.corrects).length).toBeGreaterThan(3);
      expect(corrections.some((r) => r.type === 'claim' && !r.corrects)).toBe(true); // s2 back to 5 g after 0 g
      expect(records.filter((r) => r.type === 'economic-event' && r.action === 'use' && r.corrects).length).toBeGreaterThanOrEqual(4); // valued uses and their changes
      expect(records.some((r) => r.type === 'economic-event' && r.action === 'transfer')).toBe(true);
      const transport: LedgerTransport = flavour ? new GraphqlTransport({ url: `${sim.url}/graphql`, flavour, gatewayId: CTX.gatewayId }) : new JsonBatchTransport({ url: sim.url });
      const outcomes = await transport.send(records);
      expect(outcomes.filter((o) => o.kind !== 'delivered')).toEqual([]);
      for (const r of records) expect(sim.countOf(r.id)).toBe(1);
      expect(new Set(records.map((r) => r.id)).size).toBe(records.length);

      // Money owed in the journal: every cash part of the charges plus every correction's difference.
      const owed = mapped.reduce((sum, e) => {
        const d = e.data as { price?: { cash: boolean }; parts?: { amount: number }[]; delta?: { amount: number }[] };
        if (e.kind === 'billing.charge' && d.price!.cash) return sum + d.parts!.reduce((a, p) => a + p.amount, 0);
        if (e.kind === 'billing.correction') return sum + d.delta!.reduce((a, p) => a + p.amount, 0);
        return sum;
      }, 0);
      // What the ledger holds, as reconciliation reads it: the JSON API's totals, or GraphQL's lists.
      const totals = await transport.totals('2026-01-01T00:00:00Z', '2100-01-01T00:00:00Z');
      expect(totals).toEqual(totalsOf(records));
      expect(totals.sums['claim:transfer:iso4217:CAD']).toBe(majorUnits(owed, 2));
      expect(totals.sums['economic-event:consume:om2:gram']).toBe(sessions.reduce((a, s) => a + s.filamentG * 1000, 0) / 1000);
    } finally {
      journal.close();
    }
  });
});
