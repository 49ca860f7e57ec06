/**
 * A networked instrument's cumulative counters into totals, by the metering node's rules
 * (../metering-node/meter.ts: boots, past boots, physics per counter), plus the telemetry's
 * `seq`. Pure: state and message in, next state out.
 *
 * Within one boot a message whose `seq` is not newer than the last accepted one is a repeat
 * (QoS 1 redelivery) or arrived late, and is ignored; a gap in `seq` is messages lost, whose
 * counts arrive with the next one. The counters are JSON numbers without a width: they never
 * wrap, so one that goes down within a boot is implausible.
 */
import { applyBoot, applyReading, type BootMeter, type Implausible, type Physics } from '../metering-node/meter.js';

export const COUNTERS = ['runtimeS', 'activeS', 'samples', 'energyWh'] as const;
export type Counter = (typeof COUNTERS)[number];
export type Counters = Record<Counter, number>;

export const NO_COUNTS: Counters = { runtimeS: 0, activeS: 0, samples: 0, energyWh: 0 };

/** Telemetry queued by a device while its connection was down arrives in a burst when it is back. */
export const INSTRUMENT_TOLERANCE_S = 60;

export type CounterState = BootMeter<Counter> & { seq: number };

export type CounterStep =
  | { kind: 'delta'; state: CounterState; delta: Counters; implausible: Implausible<Counter>[]; lost: number }
  | { kind: 'reboot'; state: CounterState; delta: Counters; implausible: Implausible<Counter>[]; previousBootId: number | null }
  /** Not newer than the last accepted message of this boot (a repeat or a late one), or of a past boot. */
  | { kind: 'stale'; state: CounterState };

/** Runtime and active time at most `maxClockRate` seconds a second, energy at `maxPowerW` over that time; samples unbounded. */
export function instrumentPhysics(cfg: { maxPowerW: number; maxClockRate: number }): Physics<Counter> {
  const rate = cfg.maxClockRate;
  return {
    counters: {
      runtimeS: { width: null, perS: rate },
      activeS: { width: null, perS: rate },
      samples: { width: null, perS: Infinity },
      energyWh: { width: null, perS: (cfg.maxPowerW * rate) / 3600 },
    },
    toleranceS: INSTRUMENT_TOLERANCE_S,
  };
}

/** A telemetry message at `now` (ms) on the gateway's clock. `lost`: messages missing between the last accepted one and this one (seq gap). */
export function applyTelemetry(state: CounterState | null, msg: { bootId: number; seq: number; counters: Counters }, now: number, physics: Physics<Counter>): CounterStep {
  const boot = applyBoot(state, msg.bootId, now, physics);
  if (boot.kind === 'stale') return { kind: 'stale', state: state! };
  if (boot.kind === 'reboot') {
    const r = applyReading(boot.state, msg.counters, now, physics);
    return { kind: 'reboot', state: { ...r.state, seq: msg.seq }, delta: r.delta, implausible: r.implausible, previousBootId: boot.previousBootId };
  }
  const ahead = (msg.seq - state!.seq) >>> 0; // seq wraps at 2^32
  if (ahead === 0 || ahead > 0x8000_0000) return { kind: 'stale', state: state! };
  const r = applyReading(boot.state, msg.counters, now, physics);
  return { kind: 'delta', state: { ...r.state, seq: msg.seq }, delta: r.delta, implausible: r.implausible, lost: ahead - 1 };
}
