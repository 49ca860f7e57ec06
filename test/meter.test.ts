import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyBoot, applyReading, ZERO, type MeterCounters, type MeterState } from '../gateway/src/devices/metering-node/meter.js';

const c = (energyMwh: number, relayOnS = 0, activeS = 0, filamentMm = 0): MeterCounters => ({ energyMwh, relayOnS, activeS, filamentMm });

describe('meter accumulation', () => {
  it('adds deltas of cumulative counters; a lost reading loses nothing, a duplicate adds nothing', () => {
    let s: MeterState | null = null;
    for (const r of [c(10, 1), c(25, 2), /* c(40) lost */ c(55, 4), c(55, 4)]) s = applyReading(s, 7, r).state;
    expect(s!.total).toEqual(c(55, 4));
  });

  it('closes a boot at its last counters when the node reboots, and counts the new boot from zero', () => {
    let s = applyReading(null, 1, c(100, 10)).state;
    const reboot = applyBoot(s, 2)!;
    expect(reboot.previousBootId).toBe(1);
    s = reboot.state;
    expect(applyBoot(s, 2)).toBeNull();
    const step = applyReading(s, 2, c(30, 3));
    expect(step.kind).toBe('delta');
    expect(step.state.total).toEqual(c(130, 13));
  });

  it('takes a reboot seen only in METER (HELLO lost) the same way', () => {
    const s = applyReading(null, 1, c(100)).state;
    const step = applyReading(s, 2, c(5));
    expect(step.kind).toBe('reboot');
    expect(step.state.total).toEqual(c(105));
  });

  it('ignores a reading whose counters go down within one boot', () => {
    const s = applyReading(null, 1, c(100, 10)).state;
    const step = applyReading(s, 1, c(90, 12));
    expect(step).toMatchObject({ kind: 'inconsistent', counter: 'energyMwh', was: 100, now: 90 });
    expect(step.state).toBe(s);
  });

  it('for any boots, losses and duplicates, totals equal the sum of the last counters seen per boot', () => {
    const boot = fc.array(fc.array(fc.nat(1000), { minLength: 4, maxLength: 4 }), { minLength: 1, maxLength: 15 });
    fc.assert(
      fc.property(fc.array(boot, { minLength: 1, maxLength: 6 }), fc.array(fc.constantFrom('keep', 'drop', 'dup'), { minLength: 100, maxLength: 100 }), (boots, fate) => {
        let s: MeterState | null = null;
        let k = 0;
        let expected = ZERO;
        boots.forEach((increments, b) => {
          const bootId = b + 1;
          s = applyBoot(s, bootId)?.state ?? s;
          let counters = ZERO;
          let lastSeen = ZERO;
          for (const inc of increments) {
            counters = c(counters.energyMwh + inc[0]!, counters.relayOnS + inc[1]!, counters.activeS + inc[2]!, counters.filamentMm + inc[3]!);
            const f = fate[k++ % fate.length];
            if (f === 'drop') continue;
            for (let n = f === 'dup' ? 2 : 1; n > 0; n--) s = applyReading(s, bootId, counters).state;
            lastSeen = counters;
          }
          expected = c(expected.energyMwh + lastSeen.energyMwh, expected.relayOnS + lastSeen.relayOnS, expected.activeS + lastSeen.activeS, expected.filamentMm + lastSeen.filamentMm);
        });
        expect(s!.total).toEqual(expected);
      }),
    );
  });
});
