import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countBadge, endWindow, MAX_DECISIONS_PER_S, type BadgeWindow } from '../gateway/src/sessions/badge-flood.js';
import type { StartedSession } from '../gateway/src/sessions/projection.js';
import { closeInterrupted, recoveryAction } from '../gateway/src/sessions/recovery.js';
import { newSession, usageOf, withBusy, withTechnician, type OpenSession, type Readings } from '../gateway/src/sessions/usage.js';

const session = (over: Partial<OpenSession> = {}): OpenSession =>
  newSession({
    id: 's1',
    affiliateId: 'ada',
    useType: 'member',
    startedAt: new Date('2026-01-05T10:00:00Z'),
    clockSyncedAtStart: true,
    startedMono: 0,
    meters: { energyMwh: 1000, activeS: 50 },
    filamentAtStartMm: [100],
    busySinceMono: null,
    ...over,
  });
const idle: Readings = { meters: { energyMwh: 1000, activeS: 50 }, metered: false, printer: null };

describe('session usage', () => {
  it('counts busy time over each busy spell, the open one up to now', () => {
    let open = session();
    open = withBusy(open, true, 10_000);
    open = withBusy(open, false, 70_000);
    open = withBusy(open, false, 80_000); // idle again: nothing changes
    open = withBusy(open, true, 100_000);
    expect(usageOf(open, 'lathe', idle, null, 130_000)).toMatchObject({ activeS: 90, durationS: 130 });
  });

  it("takes the meter's counters where there is a meter, and the printer's filament per extruder", () => {
    const readings: Readings = { meters: { energyMwh: 251_000, activeS: 650 }, metered: true, printer: { filamentMm: [1100, 40], gramsOf: (mm) => mm / 100 } };
    const u = usageOf(withBusy(session(), true, 0), 'printer', readings, { at: new Date('2026-01-05T11:00:00Z'), clockSynced: false }, 3_600_000);
    expect(u).toMatchObject({
      activeS: 600,
      energyWh: 250,
      filament: [
        { extruder: 0, mm: 1000, g: 10 },
        { extruder: 1, mm: 40, g: 0.4 },
      ],
      filamentMm: 1040,
      filamentG: 10.4,
      endedAt: '2026-01-05T11:00:00.000Z',
      clockSynced: { start: true, end: false },
    });
  });

  it('counts technician help in started minutes; a second technician takes over, the same one badging again stops', () => {
    let open = withTechnician(session(), 'tess', 0);
    open = withTechnician(open, 'theo', 30_000);
    expect(open.technician?.affiliateId).toBe('theo');
    open = withTechnician(open, 'theo', 61_000);
    expect(open.technician).toBeNull();
    expect(usageOf(open, 'lathe', idle, null, 600_000)).toMatchObject({ technicianMin: 2, technicians: ['tess', 'theo'] });
  });
});

describe('recovery after a crash', () => {
  const started = (id: string, useType = 'member'): StartedSession => ({ sessionId: id, toolId: 'lathe', affiliateId: 'ada', useType, startedAt: '2026-01-05T10:00:00.000Z' });

  it('closes each open session with its last checkpoint, or with nothing used when it has none; the newest is resumed', () => {
    const checkpointed = usageOf(session({ id: 'b' }), 'lathe', { ...idle, meters: { energyMwh: 3000, activeS: 80 }, metered: true }, null, 90_000);
    const { ended, resume } = closeInterrupted([
      { started: started('a'), checkpoint: null },
      { started: started('b', 'project'), checkpoint: { at: '2026-01-05T10:01:30.000Z', data: { usage: checkpointed, meters: { energyMwh: 3000, activeS: 80 } } } },
    ]);
    expect(ended[0]).toMatchObject({ sessionId: 'a', reason: 'interrupted', endedAt: '2026-01-05T10:00:00.000Z', lastCheckpointAt: null, energyWh: 0, durationS: 0 });
    expect(ended[1]).toMatchObject({ sessionId: 'b', reason: 'interrupted', useType: 'project', endedAt: '2026-01-05T10:01:30.000Z', energyWh: 2, activeS: 30, clockSynced: { start: true, end: null } });
    expect(resume).toEqual({ fromSessionId: 'b', affiliateId: 'ada', useType: 'project', meters: { energyMwh: 3000, activeS: 80 } });
    expect(closeInterrupted([]).resume).toBeNull();
  });

  it('resumes only a busy tool; switches off a relay left on when idle; never cuts a busy tool', () => {
    expect(recoveryAction(true, true, false)).toBe('resume');
    expect(recoveryAction(true, false, true)).toBe('switch-off');
    expect(recoveryAction(false, true, true)).toBe('leave-on');
    expect(recoveryAction(false, true, false)).toBe('none');
    expect(recoveryAction(false, false, false)).toBe('none');
  });
});

describe('badge flood', () => {
  it('decides at most MAX_DECISIONS_PER_S badges a window, and every badge refused is reported once (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 1500 })), { maxLength: 300 }), fc.array(fc.nat(299)), (gaps, ticksAt) => {
        let w: BadgeWindow = { start: 0, count: 0 };
        let now = 0;
        let refused = 0;
        let reported = 0;
        let admittedInWindow = 0;
        gaps.forEach((gap, i) => {
          now += gap;
          if (ticksAt.includes(i)) {
            const ended = endWindow(w, now);
            reported += ended.dropped;
            if (ended.over) admittedInWindow = 0;
            w = ended.window;
          }
          const r = countBadge(w, now);
          reported += r.dropped;
          if (r.window.start !== w.start) admittedInWindow = 0;
          w = r.window;
          if (r.admitted) admittedInWindow++;
          else refused++;
          expect(admittedInWindow).toBeLessThanOrEqual(MAX_DECISIONS_PER_S);
        });
        reported += endWindow(w, now + 1000).dropped;
        expect(reported).toBe(refused);
      }),
    );
  });
});
