import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideAccess, type AccessData, type ToolView } from '../gateway/src/access/decide.js';

const now = new Date('2026-11-24T12:00:00Z');
const data: AccessData = {
  affiliates: [
    { id: 'ada', name: 'Ada', status: 'active', badges: ['04A1B2C3'] },
    { id: 'bo', name: 'Bo', status: 'active', badges: ['04 11 22 33 44'] },
    { id: 'cy', name: 'Cy', status: 'suspended', badges: ['DEADBEEF'] },
    { id: 'di', name: 'Di', status: 'active', badges: ['CAFE0001'] },
    { id: 'ed', name: 'Ed', status: 'active', badges: ['CAFE0002'] },
  ],
  qualifications: [
    { affiliateId: 'ada', toolId: 'mk3s', expiresAt: null },
    { affiliateId: 'bo', toolId: 'mk3s', expiresAt: '2027-01-01T00:00:00Z' },
    { affiliateId: 'cy', toolId: 'mk3s', expiresAt: null },
    { affiliateId: 'ed', toolId: 'mk3s', expiresAt: '2026-11-01T00:00:00Z' },
  ],
};
const tool = (over: Partial<ToolView> = {}): ToolView => ({ id: 'mk3s', status: 'available', sessionAffiliateId: null, handover: true, ...over });

describe('access decision', () => {
  it('grants an active, qualified affiliate on an available tool, whatever the UID notation', () => {
    expect(decideAccess('04a1b2c3', tool(), data, now)).toEqual({ kind: 'grant', affiliateId: 'ada' });
    expect(decideAccess('04:11:22:33:44', tool(), data, now)).toEqual({ kind: 'grant', affiliateId: 'bo' });
  });

  it.each([
    ['FFFFFFFF', tool(), 'unknown-badge', null],
    ['DEADBEEF', tool(), 'suspended', 'cy'],
    ['CAFE0001', tool(), 'not-qualified', 'di'],
    ['CAFE0002', tool(), 'qualification-expired', 'ed'],
    ['04A1B2C3', tool({ status: 'blocked' }), 'tool-blocked', 'ada'],
    ['04A1B2C3', tool({ status: 'maintenance' }), 'tool-in-maintenance', 'ada'],
    ['04A1B2C3', tool({ status: 'in-use', sessionAffiliateId: 'bo', handover: false }), 'in-use-by-other', 'ada'],
  ] as const)('denies %s with the reason %s', (uid, t, reason, affiliateId) => {
    expect(decideAccess(uid, t, data, now)).toEqual({ kind: 'deny', reason, affiliateId });
  });

  it('ends the session when its own affiliate badges again, even suspended meanwhile', () => {
    expect(decideAccess('04A1B2C3', tool({ status: 'in-use', sessionAffiliateId: 'ada' }), data, now)).toEqual({ kind: 'badge-out', affiliateId: 'ada' });
    expect(decideAccess('DEADBEEF', tool({ status: 'in-use', sessionAffiliateId: 'cy' }), data, now)).toEqual({ kind: 'badge-out', affiliateId: 'cy' });
  });

  it('a tool blocked or taken into maintenance during a session: its affiliate can still badge out, nobody can take over', () => {
    for (const status of ['blocked', 'maintenance'] as const) {
      const t = tool({ status, sessionAffiliateId: 'ada' });
      expect(decideAccess('04A1B2C3', t, data, now)).toEqual({ kind: 'badge-out', affiliateId: 'ada' });
      expect(decideAccess('0411223344', t, data, now)).toMatchObject({ kind: 'deny', reason: status === 'blocked' ? 'tool-blocked' : 'tool-in-maintenance' });
    }
  });

  it('hands a running session over to another qualified affiliate, and only to one', () => {
    const inUse = tool({ status: 'in-use', sessionAffiliateId: 'ada' });
    expect(decideAccess('0411223344', inUse, data, now)).toEqual({ kind: 'handover', from: 'ada', to: 'bo' });
    expect(decideAccess('CAFE0001', inUse, data, now)).toEqual({ kind: 'deny', reason: 'not-qualified', affiliateId: 'di' });
  });

  it('an expiry is a point in time: valid before it, expired from it on', () => {
    expect(decideAccess('0411223344', tool(), data, new Date('2026-12-31T23:59:59Z')).kind).toBe('grant');
    expect(decideAccess('0411223344', tool(), data, new Date('2027-01-01T00:00:00Z'))).toMatchObject({ reason: 'qualification-expired' });
  });

  it('never grants or hands over to anyone not active, qualified and unexpired (property)', () => {
    const statuses = fc.constantFrom('available', 'in-use', 'blocked', 'maintenance' as const);
    fc.assert(
      fc.property(fc.constantFrom(...data.affiliates.flatMap((a) => a.badges), 'FFFF'), statuses, fc.constantFrom(null, 'ada', 'bo'), fc.boolean(), (uid, status, holder, handover) => {
        const d = decideAccess(uid, tool({ status, sessionAffiliateId: status === 'in-use' ? holder : null, handover }), data, now);
        if (d.kind === 'grant' || d.kind === 'handover') {
          const who = d.kind === 'grant' ? d.affiliateId : d.to;
          expect(['ada', 'bo']).toContain(who);
          expect(status === 'available' || status === 'in-use').toBe(true);
        }
      }),
    );
  });
});
