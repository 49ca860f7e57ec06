/**
 * The meter's pure core (gateway/src/devices/metering-node/meter.ts): boots and past boots,
 * physics per counter, wrap-around. The defects' own figures first, then property tests over
 * random sequences of reboots, lost, duplicated, late and reordered frames, replays of earlier
 * boots, wraps and spikes.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Vectors } from '../firmware-protocol/src/vectors.js';
import {
  applyBoot,
  applyReading,
  COUNTER_NAMES,
  counterGrowth,
  nodePhysics,
  PAST_BOOTS,
  type CounterName,
  type MeterCounters,
  type MeterState,
  type Physics,
} from '../gateway/src/devices/metering-node/meter.js';

const c = (energyMwh: number, relayOnS = 0, activeS = 0, filamentMm = 0): MeterCounters => ({ energyMwh, relayOnS, activeS, filamentMm });
const WIDTHS = { energyMwh: 32, relayOnS: 32, activeS: 32, filamentMm: 32 };
/** A node behind a 3.68 kW relay whose clock keeps time. */
const NODE = nodePhysics({ maxPowerW: 3680, maxClockRate: 1.05 }, WIDTHS);
const S = 1000;
const H = 3600 * S;

/** Feeds frames as the driver does: every frame places its boot, a METER then its counters. */
class Meter {
  state: MeterState | null = null;
  reboots = 0;
  stale = 0;
  implausible: CounterName[] = [];

  constructor(private readonly physics: Physics<CounterName> = NODE) {}

  hello(bootId: number, at: number): void {
    this.boot(bootId, at);
  }

  meter(bootId: number, counters: MeterCounters, at: number): void {
    if (!this.boot(bootId, at)) return;
    const step = applyReading(this.state!, counters, at, this.physics);
    this.implausible.push(...step.implausible.map((i) => i.counter));
    this.state = step.state;
  }

  get total(): MeterCounters {
    return this.state!.total;
  }

  private boot(bootId: number, at: number): boolean {
    const step = applyBoot(this.state, bootId, at, this.physics);
    if (step.kind === 'stale') {
      this.stale++;
      return false;
    }
    if (step.kind === 'reboot' && step.previousBootId !== null) this.reboots++;
    this.state = step.state;
    return true;
  }
}

describe('meter: boots', () => {
  it('adds deltas of cumulative counters; a lost reading loses nothing, a duplicate adds nothing', () => {
    const m = new Meter();
    m.hello(7, 0);
    for (const [i, r] of [c(10, 1), c(25, 2), /* c(40, 3) lost */ c(55, 4), c(55, 4)].entries()) m.meter(7, r, (i + 1) * S);
    expect(m.total).toEqual(c(55, 4));
  });

  it('closes a boot at its last counters when the node reboots, and counts the new one from zero (with or without its HELLO)', () => {
    const m = new Meter();
    m.meter(1, c(100, 10), 0);
    m.hello(2, 60 * S);
    m.meter(2, c(30, 3), 63 * S);
    m.meter(3, c(5, 1), 70 * S); // boot 3's HELLO lost: its METER starts it
    expect(m.total).toEqual(c(135, 14));
    expect(m.reboots).toBe(2);
  });

  it("never counts a late frame of an earlier boot again, however often the boots flip (defect 1's figures)", () => {
    const m = new Meter();
    // boot A ran for months; its last METER: 3,000,001,050 mWh, relay on 19 s, active 10,000,007 s
    m.hello(0xa, 0);
    const lastOfA = c(3_000_001_050, 19, 10_000_007);
    m.meter(0xa, lastOfA, 10_000_010 * S);
    m.hello(0xb, 10_000_020 * S); // the watchdog: boot B
    m.meter(0xb, c(50, 1, 1), 10_000_021 * S);
    for (let flip = 0; flip < 5; flip++) {
      m.meter(0xa, lastOfA, (10_000_022 + flip) * S); // boot A's METER, replayed by a TCP bridge's buffer
      m.meter(0xb, c(50, 1, 1), (10_000_022 + flip) * S);
    }
    expect(m.total).toEqual(c(3_000_001_100, 20, 10_000_008));
    expect(m.reboots).toBe(1);
    expect(m.stale).toBe(5);
    expect(m.state!.past).toEqual([{ bootId: 0xa, last: lastOfA }]);
  });

  it(`remembers the ${PAST_BOOTS} boots before the current one, and forgets older ones`, () => {
    const m = new Meter();
    for (let b = 1; b <= PAST_BOOTS + 2; b++) m.hello(b, b * S);
    expect(m.state!.past.map((p) => p.bootId)).toEqual(Array.from({ length: PAST_BOOTS }, (_, i) => PAST_BOOTS + 1 - i));
    m.hello(2, 20 * S);
    expect(m.stale).toBe(1);
    m.hello(1, 21 * S); // forgotten: a new boot (boot ids are random: this is a chance of a few in 2^32)
    expect(m.state!.bootId).toBe(1);
  });
});

describe('meter: physics', () => {
  it("sets aside a reading beyond the node's physics, counts the other counters, and resumes from the last good one (defect 2's figures)", () => {
    const m = new Meter();
    m.hello(1, 0);
    m.meter(1, c(850, 7, 7), 10 * S);
    // a 10 s community session: one valid METER claims 10,000,000 s more activity and 3 MWh
    m.meter(1, c(3_000_000_850, 12, 10_000_007), 15 * S);
    expect(m.implausible).toEqual(['energyMwh', 'activeS']);
    expect(m.total).toEqual(c(850, 12, 7));
    m.meter(1, c(1_700, 17, 12), 20 * S);
    expect(m.total).toEqual(c(1_700, 17, 12));
    expect(m.implausible).toHaveLength(2);
  });

  it('bounds time by the clock and energy by the rated power, with a tolerance for late and bunched frames', () => {
    const m = new Meter();
    m.hello(1, 0);
    m.meter(1, c(0), 100 * S);
    // an hour later: at most 3,680 W for an hour (and the tolerance): 3.86 kWh, 3,790 s
    m.meter(1, c(3_864_000, 3790, 3600), 100 * S + H);
    expect(m.implausible).toEqual([]);
    m.meter(1, c(3_864_000 + 30_000, 3790 + 31, 3600), 100 * S + H + 10 * S); // 30 Wh and 31 s in 10 s: too much
    expect(m.implausible).toEqual(['energyMwh', 'relayOnS']);
    // frames bunched by a bridge's buffer: five one-second readings within 50 ms pass on the tolerance
    for (let i = 1; i <= 5; i++) m.meter(1, c(3_864_000 + 1000 * i, 3790 + i, 3600 + i), 100 * S + H + 10 * S + 10 * i);
    expect(m.implausible).toHaveLength(2);
    expect(m.total).toEqual(c(3_869_000, 3795, 3605));
  });

  it('keeps counting a counter past its wrap at 2^32, and the others with it (defect 3)', () => {
    const m = new Meter();
    m.hello(1, 0);
    const nearWrap = 2 ** 32 - 100;
    m.meter(1, c(nearWrap, 100, 50), 50 * 24 * H); // fifty days at 3.6 kW
    m.meter(1, c(900, 110, 55), 50 * 24 * H + 10 * S);
    expect(m.implausible).toEqual([]);
    expect(m.total).toEqual(c(nearWrap + 1000, 110, 55));
    expect(counterGrowth(2 ** 32 - 1, 0, 32)).toBe(1);
    expect(counterGrowth(5, 3, 32)).toBe(2 ** 32 - 2);
    expect(counterGrowth(5, 3, null)).toBe(-2);
  });

  it('sets aside a reading that goes back within a boot (a replay the window did not catch): it would be a wrap of almost 2^32', () => {
    const m = new Meter();
    m.hello(1, 0);
    m.meter(1, c(5000, 50, 40), 60 * S);
    m.meter(1, c(4000, 40, 30), 61 * S);
    expect(m.implausible).toEqual(['energyMwh', 'relayOnS', 'activeS']);
    expect(m.total).toEqual(c(5000, 50, 40));
  });

  it('bounds the first boot after a reboot by the time since the last frame of the previous one', () => {
    const m = new Meter();
    m.hello(1, 0);
    m.meter(1, c(0), 10 * S);
    m.meter(2, c(0, 500, 500), 20 * S); // 500 s in a boot that began less than 10 s ago
    expect(m.implausible).toEqual(['relayOnS', 'activeS']);
    m.meter(2, c(0, 600, 600), 600 * S);
    expect(m.total).toEqual(c(0, 600, 600));
  });

  it('takes the first reading of the first boot it sees as it is: the node may have run for years before the gateway', () => {
    const m = new Meter();
    m.meter(1, c(2 ** 31, 10 ** 8, 10 ** 8), 0);
    expect(m.implausible).toEqual([]);
    expect(m.total).toEqual(c(2 ** 31, 10 ** 8, 10 ** 8));
  });
});

describe('meter: the receiver cases of firmware-protocol/vectors.json', () => {
  const vectors = JSON.parse(readFileSync(new URL('../firmware-protocol/vectors.json', import.meta.url), 'utf8')) as Vectors;

  it.each(vectors.counters.cases.map((v) => [v.name, v] as const))('growth: %s', (_name, v) => {
    expect(counterGrowth(v.last, v.now, vectors.counters.width)).toBe(v.growth);
  });

  it.each(vectors.boots.cases.map((v) => [v.name, v] as const))('boots: %s', (_name, v) => {
    let state: MeterState | null = null;
    const verdicts = v.bootIds.map((bootId, i) => {
      const step = applyBoot(state, bootId, i * S, NODE);
      state = step.state;
      return step.kind === 'reboot' ? 'new' : step.kind;
    });
    expect(verdicts).toEqual(v.verdicts);
    expect(vectors.boots.remembered).toBe(PAST_BOOTS);
  });
});

// ---- property tests, on a small world where wrap-around comes quickly ----

/** Every counter 12 bits wide (wraps at 4,096) and at most 10 a second; the node's truth grows at most 5 a second. */
const SMALL: Physics<CounterName> = {
  counters: Object.fromEntries(COUNTER_NAMES.map((n) => [n, { width: 12, perS: 10 }])) as Physics<CounterName>['counters'],
  toleranceS: 5,
};
const MOD = 4096;
const TRUE_RATE = 5;

/** One boot of the truth: each step a time in ms (now and then minutes, so that counters wrap) and what each counter gained. */
const step = fc.record({
  dt: fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 200_000, max: 400_000 })),
  gain: fc.array(fc.integer({ min: 0, max: 4 }).map((q) => q / 4), { minLength: 4, maxLength: 4 }),
});
const bootOf = (steps: { dt: number; gain: number[] }[]) => {
  let t = 0;
  const counters = [0, 0, 0, 0];
  return steps.map(({ dt, gain }) => {
    t += dt;
    gain.forEach((g, i) => (counters[i]! += Math.floor((g * TRUE_RATE * dt) / 1000)));
    return { t, counters: [...counters] };
  });
};
const wire = (counters: number[]) => Object.fromEntries(COUNTER_NAMES.map((n, i) => [n, counters[i]! % MOD])) as MeterCounters;
const sum = (rows: number[][]) => COUNTER_NAMES.map((_, i) => rows.reduce((a, r) => a + r[i]!, 0));

describe('meter: properties', () => {
  it('in order, with losses, duplicates, wraps and spikes: every true reading counts, no spike does, and a spike in one counter stops no other', () => {
    const frame = fc.record({ fate: fc.constantFrom('keep', 'keep', 'keep', 'drop', 'dup'), spike: fc.option(fc.record({ counters: fc.subarray([0, 1, 2, 3], { minLength: 1 }), by: fc.integer({ min: 100, max: MOD - 100 }) }), { freq: 4 }) });
    const boots = fc.array(fc.array(fc.tuple(step, frame), { minLength: 1, maxLength: 60, size: 'max' }), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(boots, (spec) => {
        const m = new Meter(SMALL);
        let clock = 0;
        let spikes = 0;
        const counted: number[][] = [];
        spec.forEach((steps, b) => {
          const truth = bootOf(steps.map(([s]) => s));
          const start = clock;
          m.hello(b + 1, start);
          // the gateway meets the node: the first reading of the first boot it sees is taken as it is
          if (b === 0) m.meter(1, wire([0, 0, 0, 0]), start);
          let last = [0, 0, 0, 0];
          truth.forEach(({ t, counters }, i) => {
            const { fate, spike } = steps[i]![1];
            clock = start + t;
            // never two losses in a row: a reading then spans at most two steps, less than a wrap
            if (fate === 'drop' && steps[i - 1]?.[1].fate !== 'drop') return;
            for (let n = fate === 'dup' ? 2 : 1; n > 0; n--) m.meter(b + 1, wire(counters), clock);
            last = counters;
            if (spike) {
              spikes += spike.counters.length;
              m.meter(b + 1, wire(counters.map((v, k) => (spike.counters.includes(k) ? v + spike.by : v))), clock);
            }
          });
          counted.push(last);
          clock += 1;
        });
        expect(m.implausible).toHaveLength(spikes);
        expect(COUNTER_NAMES.map((n) => m.total[n])).toEqual(sum(counted));
        expect(m.reboots).toBe(spec.length - 1);
      }),
    );
  });

  it('with late, reordered and duplicated frames, replays of earlier boots and spikes: totals never exceed the truth, and an on-time reading resumes in full', () => {
    const MAX_DELAY = 5000;
    const QUIET = 2 * MAX_DELAY + 5000;
    const frame = fc.record({
      fate: fc.constantFrom('keep', 'keep', 'drop', 'dup'),
      delays: fc.tuple(fc.integer({ min: 0, max: MAX_DELAY }), fc.integer({ min: 0, max: MAX_DELAY })),
      spike: fc.option(fc.record({ counters: fc.subarray([0, 1, 2, 3], { minLength: 1 }), by: fc.integer({ min: 1000, max: MOD - 1000 }) }), { freq: 5 }),
      replay: fc.option(fc.nat(), { freq: 5 }),
    });
    const shortStep = fc.record({ dt: fc.integer({ min: 0, max: 1000 }), gain: step.map((s) => s.gain) });
    const boots = fc.array(fc.array(fc.tuple(shortStep, frame), { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(boots, (spec) => {
        /** `truth`: the true value of each counter the frame carries (null: a spiked one). */
        type Delivery = { at: number; order: number; bootId: number; counters: MeterCounters | null; truth: (number | null)[] | null };
        const deliveries: Delivery[] = [];
        const sent: Delivery[][] = [];
        const finals: number[][] = [];
        let clock = 0;
        let order = 0;
        spec.forEach((steps, b) => {
          const bootId = b + 1;
          const start = clock;
          deliveries.push({ at: start, order: order++, bootId, counters: null, truth: null }); // HELLO, on time
          // the gateway meets the node: the first reading of the first boot it sees is taken as it is
          if (b === 0) deliveries.push({ at: start, order: order++, bootId, counters: wire([0, 0, 0, 0]), truth: [0, 0, 0, 0] });
          const truth = bootOf(steps.map(([s]) => ({ dt: s.dt, gain: s.gain })));
          const mine: Delivery[] = [];
          truth.forEach(({ t, counters }, i) => {
            const { fate, delays, spike, replay } = steps[i]![1];
            const at = start + t;
            clock = at;
            const frame = { bootId, counters: wire(counters), truth: counters };
            if (fate !== 'drop') deliveries.push({ ...frame, at: at + delays[0], order: order++ });
            if (fate === 'dup') deliveries.push({ ...frame, at: at + delays[1], order: order++ });
            mine.push({ ...frame, at, order: 0 });
            if (spike) {
              const spiked = counters.map((v, k) => (spike.counters.includes(k) ? v + spike.by : v));
              deliveries.push({ bootId, at: at + delays[0], order: order++, counters: wire(spiked), truth: counters.map((v, k) => (spike.counters.includes(k) ? null : v)) });
            }
            const old = replay !== null && b > 0 ? sent[replay % b]! : [];
            if (old.length > 0) deliveries.push({ ...old[replay! % old.length]!, at: at + delays[1], order: order++ });
          });
          sent.push(mine);
          finals.push(truth.at(-1)!.counters);
          clock += 1;
        });
        // the current boot's last reading again, on time after a quiet spell
        const current = spec.length;
        const final = finals.at(-1)!;
        deliveries.push({ bootId: current, at: clock + QUIET, order: order++, counters: wire(final), truth: final });

        const m = new Meter(SMALL);
        let totalAtCurrentBoot: MeterCounters | null = null;
        /** Per boot, the most each counter has said in a true frame delivered so far: all the gateway may have counted. */
        const said: number[][] = spec.map(() => [0, 0, 0, 0]);
        deliveries.sort((x, y) => x.at - y.at || x.order - y.order);
        for (const d of deliveries) {
          if (d.counters === null) m.hello(d.bootId, d.at);
          else m.meter(d.bootId, d.counters, d.at);
          if (d.counters === null && d.bootId === current) totalAtCurrentBoot = { ...m.total };
          if (d.truth) said[d.bootId - 1] = d.truth.map((v, i) => Math.max(v ?? 0, said[d.bootId - 1]![i]!));
          const bound = sum(said);
          COUNTER_NAMES.forEach((n, i) => expect(m.total[n]).toBeLessThanOrEqual(bound[i]!));
        }
        // the current boot: everything it counted, whatever came before its last reading
        COUNTER_NAMES.forEach((n, i) => expect(m.total[n] - totalAtCurrentBoot![n]).toBe(final[i]));
        expect(m.reboots).toBe(spec.length - 1);
      }),
    );
  });
});
