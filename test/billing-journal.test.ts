/**
 * Billing through the journal, for any sequence of sessions and corrections: every stored
 * charge is reproduced exactly from the inputs it kept, no co-owner is ever paid beyond the
 * cap, the tool is pooled at most once, and a statement's fund totals are the sum of its
 * sessions.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Billing, verifyCharges, type CorrectionChange } from '../gateway/src/billing/billing.js';
import { billingSchema } from '../gateway/src/billing/config.js';
import { capOf } from '../gateway/src/billing/split.js';
import { statement } from '../gateway/src/billing/statement.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { tempDir } from './helpers.js';

const config = billingSchema.parse({
  currency: 'CAD',
  technicianRate: '25.00',
  materials: { PLA: { pricePerGram: '0.031' } },
  // corrections of any size: what is checked here is the arithmetic, not the bounds
  corrections: { maxTechnicianFactor: 1000 },
  tools: {
    printer: {
      material: 'PLA',
      tariffs: {
        commercial: { hourlyRate: '6.35', incrementMin: 15, minimumCharge: '2.00', split: { maintenance: 33, infrastructure: 17, payback: 50 } },
        community: { hourlyRate: '2.00', billedTime: 'active', incrementMin: 5, split: { maintenance: 60, infrastructure: 40, payback: 0 } },
        project: { hourlyRate: '6.00', cash: false },
      },
      coOwnership: { multiplier: '1.2', coOwners: [{ affiliate: 'ada', contribution: '7.00' }, { affiliate: 'bo', contribution: '3.33' }, { affiliate: 'cy', contribution: '0.01' }] },
    },
  },
});

const session = fc.record({
  affiliateId: fc.constantFrom('ada', 'bo', 'di'),
  useType: fc.constantFrom('commercial', 'commercial', 'community', 'project', 'unknown'),
  durationS: fc.integer({ min: 0, max: 6 * 3600 }),
  activeRatio: fc.double({ min: 0, max: 1, noNaN: true }),
  filamentG: fc.integer({ min: 0, max: 200_000 }).map((mg) => mg / 1000),
  technicianMin: fc.integer({ min: 0, max: 90 }),
  correction: fc.option(
    fc.oneof(
      fc.constant<CorrectionChange>({ kind: 'void' }),
      fc.constantFrom('commercial', 'community', 'project').map((useType): CorrectionChange => ({ kind: 'use-type', useType })),
      fc.integer({ min: 0, max: 50_000 }).map((mg): CorrectionChange => ({ kind: 'material', filamentG: mg / 1000 })),
      fc.integer({ min: 0, max: 120 }).map((technicianMin): CorrectionChange => ({ kind: 'technician', technicianMin })),
    ),
    { freq: 4 },
  ),
});

describe('billing through the journal', () => {
  it('reproduces every charge from its inputs, never pays beyond a cap, and statements add up', () => {
    fc.assert(
      fc.property(fc.array(session, { minLength: 1, maxLength: 30 }), fc.boolean(), (sessions, closeFirstMonth) => {
        const journal = Journal.open(tempDir('billing-prop'));
        try {
          const billing = new Billing(config, journal);
          sessions.forEach((s, i) => {
            const month = i < sessions.length / 2 ? '2026-10' : '2026-11';
            journal.durably(() =>
              billing.charge({
                sessionId: `s${i}`,
                toolId: 'printer',
                affiliateId: s.affiliateId,
                useType: s.useType,
                startedAt: `${month}-15T10:00:00.000Z`,
                endedAt: `${month}-15T12:00:00.000Z`,
                durationS: s.durationS,
                activeS: Math.floor(s.durationS * s.activeRatio),
                filamentG: s.filamentG,
                technicianMin: s.technicianMin,
              }),
            );
          });
          if (closeFirstMonth) billing.closePeriod('2026-10', 'custodian', new Date('2026-11-01T00:00:00Z'));
          sessions.forEach((s, i) => {
            if (!s.correction || s.useType === 'unknown') return;
            try {
              billing.correct(`s${i}`, s.correction, 'checked against the print log', 'custodian');
            } catch (err) {
              // Only voiding a void charge is refused.
              expect((err as Error).message).toMatch(/void/);
            }
          });
          expect(verifyCharges(journal).mismatches).toEqual([]);
          const received = billing.received('printer');
          for (const c of config.tools.printer!.coOwnership!.coOwners) {
            const contribution = Math.round(Number(c.contribution) * 100);
            expect(received.get(c.affiliate) ?? 0).toBeLessThanOrEqual(capOf(contribution, '1.2'));
            expect(received.get(c.affiliate) ?? 0).toBeGreaterThanOrEqual(0);
          }
          expect(journal.events({ kind: 'tool.pooled' }).length).toBeLessThanOrEqual(1);
          const st = statement(journal, { from: '2026-10', to: '2026-12' });
          const cashNet = st.sessions.reduce((a, s) => a + s.net.total, 0);
          expect(st.funds.total).toBe(cashNet);
          expect(st.value).toBe(st.sessions.reduce((a, s) => a + s.netValue, 0));
          expect(st.value).toBeGreaterThanOrEqual(0);
          expect(st.payback.reduce((a, p) => a + p.amount, 0)).toBe(st.funds.payback);
          if (closeFirstMonth) expect(st.sessions.flatMap((s) => s.entries).filter((e) => e.kind === 'correction' && e.period === '2026-10').length).toBe(0);
        } finally {
          journal.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});
