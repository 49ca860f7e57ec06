/**
 * The example of ledger-client/README.md as journal events, written out by hand in the shapes
 * the gateway journals: Farah's commercial print on the co-financed printer (two extruders, one
 * used; Tomas helping 12 minutes), its charge split with the co-owners Ada, Bo and Chen, and the
 * custodian's correction of the technician time to 30 minutes.
 * Prices: 6.00/h in 15-minute increments, PLA 0.030/g, technician 25.00/h, split 30/20/50.
 */
import type { JournalEventInput, MappingContext } from '../ledger-client/src/mapping.js';

export const CTX: MappingContext = { gatewayId: 'lab-1', currency: 'CAD', minorUnit: 2 };

const inputs = (technicianMin: number) => ({
  usage: { durationS: 5999.9, activeS: 5400, filamentG: 44.7, technicianMin, ownMaterial: false },
  tariff: { hourlyRate: '6.00', billedTime: 'session', incrementMin: 15, minimumCharge: '2.00', chargeMaterial: true, cash: true },
  shares: { maintenance: 30, infrastructure: 20, payback: 50 },
  minorUnit: 2,
  materialPricePerGram: '0.030',
  technicianRatePerHour: '25.00',
  coOwners: [
    { affiliateId: 'ada', contribution: 80000, received: 0 },
    { affiliateId: 'bo', contribution: 60000, received: 0 },
    { affiliateId: 'chen', contribution: 50000, received: 0 },
  ],
  multiplier: '1.2',
  excessTo: 'funds',
  pooled: false,
});

const parts = (technician: number) => [
  { account: 'material', amount: 134 },
  { account: 'technician', amount: technician },
  { account: 'maintenance', amount: 315 },
  { account: 'infrastructure', amount: 210 },
  { account: 'co-owner', affiliateId: 'ada', amount: 221 },
  { account: 'co-owner', affiliateId: 'bo', amount: 166 },
  { account: 'co-owner', affiliateId: 'chen', amount: 138 },
];

/**
 * The three events of one session. `day` moves the whole example to another day of November
 * 2026 (and gives it its own session id and journal ids), so tests can send fresh copies.
 */
export function exampleEvents(day = 24): { ended: JournalEventInput; charge: JournalEventInput; correction: JournalEventInput } {
  const d = `2026-11-${String(day).padStart(2, '0')}`;
  const sessionId = `5b0c6d1e-0000-4000-8000-0000000000${String(day).padStart(2, '0')}`;
  const base = 1000 * day;
  const hash = (n: number) => n.toString(16).padStart(64, '0');
  return {
    ended: {
      id: base + 41,
      hash: hash(base + 41),
      at: `${d}T15:40:00.120Z`,
      kind: 'session.ended',
      deviceId: 'printer',
      data: {
        sessionId,
        toolId: 'printer',
        affiliateId: 'farah',
        useType: 'commercial',
        startedAt: `${d}T14:00:00.000Z`,
        endedAt: `${d}T15:39:59.900Z`,
        clockSynced: { start: true, end: true },
        durationS: 5999.9,
        activeS: 5400,
        energyWh: 96.5,
        filament: [
          { extruder: 0, mm: 15000, g: 44.7 },
          { extruder: 1, mm: 0, g: 0 },
        ],
        filamentMm: 15000,
        filamentG: 44.7,
        technicianMin: 12,
        technicians: ['tomas'],
        reason: 'badge-out',
      },
    },
    charge: {
      id: base + 42,
      hash: hash(base + 42),
      at: `${d}T15:40:00.120Z`,
      kind: 'billing.charge',
      deviceId: 'printer',
      data: {
        sessionId,
        affiliateId: 'farah',
        useType: 'commercial',
        startedAt: `${d}T14:00:00.000Z`,
        endedAt: `${d}T15:39:59.900Z`,
        period: '2026-11',
        currency: 'CAD',
        inputs: inputs(12),
        price: { billedMin: 105, usage: 1050, material: 134, technician: 500, total: 1684, cash: true },
        parts: parts(500),
      },
    },
    correction: {
      id: base + 57,
      hash: hash(base + 57),
      at: `${d}T18:02:13.500Z`,
      kind: 'billing.correction',
      deviceId: 'printer',
      data: {
        corrects: base + 42,
        sessionId,
        affiliateId: 'farah',
        change: { kind: 'technician', technicianMin: 30 },
        reason: 'Tomas helped with the bed levelling for half an hour',
        by: 'custodian',
        period: '2026-11',
        after: { useType: 'commercial', inputs: inputs(30), price: { billedMin: 105, usage: 1050, material: 134, technician: 1250, total: 2434, cash: true }, parts: parts(1250) },
        delta: [{ account: 'technician', amount: 750 }],
        valueDelta: 0,
      },
    },
  };
}
