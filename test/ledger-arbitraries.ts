/**
 * Journal events the ledger mapping reads, generated with fast-check in every shape the gateway
 * may journal them: sessions with or without material, technician time, an end; cash and valued
 * charges; corrections of every kind; the pool transition.
 */
import fc from 'fast-check';
import type { JournalEventInput } from '../ledger-client/src/mapping.js';

const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
const instant = fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2030, 0, 1) }).map((ms) => new Date(ms).toISOString());
const minor = fc.integer({ min: -5_000_000, max: 5_000_000 });
const grams = fc.oneof(fc.constant(0), fc.double({ min: 0, max: 5000, noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 1, max: 3000 }).map((g) => g / 100));
const hash = fc.stringMatching(/^[0-9a-f]{64}$/);
const account = fc.constantFrom('material', 'technician', 'maintenance', 'infrastructure', 'co-owner');
const part = fc.record({ account, affiliateId: name, amount: minor }).map((p) => (p.account === 'co-owner' ? p : { account: p.account, amount: p.amount }));
const price = fc.record({ usage: minor, material: minor, technician: minor, total: minor, cash: fc.boolean() });
const currency = fc.constantFrom('CAD', 'EUR', 'JPY', 'CLF');

const sessionEnded = fc.record({
  sessionId: fc.uuid(),
  toolId: name,
  affiliateId: name,
  useType: fc.constantFrom('commercial', 'community', 'project'),
  startedAt: instant,
  endedAt: fc.option(instant, { nil: null }),
  durationS: fc.double({ min: 0, max: 86_400, noNaN: true, noDefaultInfinity: true }),
  activeS: fc.option(fc.integer({ min: 0, max: 86_400 }), { nil: undefined }),
  energyWh: fc.option(fc.double({ min: 0, max: 1e5, noNaN: true, noDefaultInfinity: true }), { nil: undefined }),
  filament: fc.array(fc.record({ extruder: fc.integer({ min: 0, max: 4 }), g: grams }), { maxLength: 3 }),
  technicianMin: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 600 })),
  technicians: fc.array(name, { maxLength: 3 }),
  reason: fc.option(fc.constantFrom('badge-out', 'idle', 'stopped'), { nil: undefined }),
});

const charge = fc.record({
  sessionId: fc.uuid(),
  affiliateId: name,
  useType: fc.constantFrom('commercial', 'project'),
  currency,
  inputs: fc.record({ minorUnit: fc.integer({ min: 0, max: 4 }) }),
  price,
  parts: fc.array(part, { maxLength: 8 }),
});

const correction = fc.record({
  corrects: fc.integer({ min: 1, max: 1e6 }),
  sessionId: fc.uuid(),
  affiliateId: name,
  change: fc.oneof(
    fc.constant({ kind: 'void' }),
    fc.record({ kind: fc.constant('use-type'), useType: fc.constantFrom('commercial', 'project') }),
    fc.record({ kind: fc.constant('material'), filamentG: grams }),
    fc.record({ kind: fc.constant('technician'), technicianMin: fc.integer({ min: 0, max: 600 }) }),
  ),
  reason: fc.string({ maxLength: 40 }),
  by: name,
  after: fc.record({ useType: fc.constantFrom('commercial', 'project'), inputs: fc.option(fc.record({ minorUnit: fc.integer({ min: 0, max: 4 }) }), { nil: null }), price: fc.option(price, { nil: null }), parts: fc.array(part, { maxLength: 8 }) }),
  delta: fc.array(part, { maxLength: 8 }),
  valueDelta: minor,
});

const pooled = fc.record({
  sessionId: fc.uuid(),
  multiplier: fc.constantFrom('1.2', '1', '1.5'),
  coOwners: fc.array(fc.record({ affiliateId: name, contribution: fc.nat(1e7), cap: fc.nat(1.2e7) }), { minLength: 1, maxLength: 5 }),
});

/** One journal event of a kind the ledger maps, at a tool. */
export const journalEvent: fc.Arbitrary<JournalEventInput> = fc
  .record({
    id: fc.integer({ min: 1, max: 1e9 }),
    hash,
    at: instant,
    deviceId: name,
    body: fc.oneof(
      sessionEnded.map((data) => ({ kind: 'session.ended', data })),
      charge.map((data) => ({ kind: 'billing.charge', data })),
      correction.map((data) => ({ kind: 'billing.correction', data })),
      pooled.map((data) => ({ kind: 'tool.pooled', data })),
    ),
  })
  .map(({ body, ...e }) => ({ ...e, kind: body.kind, data: body.data as Record<string, unknown> }));

/** A journal: events at a few tools. */
export const journal = fc.array(journalEvent, { minLength: 1, maxLength: 12 });
