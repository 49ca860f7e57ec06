/**
 * A networked instrument's cumulative counters into totals that survive lost, repeated and
 * reordered messages and the device's reboots. Pure: state and message in, next state out.
 *
 * Within one boot (`bootId`) the counters only grow, so the difference to the last accepted
 * message is what happened in between, however many messages were lost. A message whose
 * `seq` is not newer than the last accepted one is a repeat (QoS 1 redelivery) or arrived
 * late, and is ignored. A new `bootId` closes the previous boot at its last counters and
 * counts the new one from zero.
 */

export const COUNTERS = ['runtimeS', 'activeS', 'samples', 'energyWh'] as const;
export type Counters = Record<(typeof COUNTERS)[number], number>;

export const NO_COUNTS: Counters = { runtimeS: 0, activeS: 0, samples: 0, energyWh: 0 };

export interface CounterState {
  bootId: number;
  seq: number;
  /** Counters of the last accepted message of this boot. */
  last: Counters;
  /** Over every boot, this one up to `last`. */
  total: Counters;
}

export type CounterStep =
  | { kind: 'delta'; state: CounterState; delta: Counters; lost: number }
  | { kind: 'reboot'; state: CounterState; delta: Counters; previousBootId: number | null }
  /** Not newer than the last accepted message of this boot: a repeat or a late one. */
  | { kind: 'stale'; state: CounterState }
  /** A counter went down within one boot: the message is ignored. */
  | { kind: 'inconsistent'; state: CounterState; counter: keyof Counters; was: number; now: number };

/** `lost`: messages missing between the last accepted one and this one (seq gap). */
export function applyTelemetry(state: CounterState | null, msg: { bootId: number; seq: number; counters: Counters }): CounterStep {
  const c = msg.counters;
  if (state === null || state.bootId !== msg.bootId) {
    return { kind: 'reboot', state: { bootId: msg.bootId, seq: msg.seq, last: { ...c }, total: add(state?.total ?? NO_COUNTS, c) }, delta: { ...c }, previousBootId: state?.bootId ?? null };
  }
  const ahead = (msg.seq - state.seq) >>> 0; // seq wraps at 2^32
  if (ahead === 0 || ahead > 0x8000_0000) return { kind: 'stale', state };
  for (const name of COUNTERS) {
    if (c[name] < state.last[name]) return { kind: 'inconsistent', state, counter: name, was: state.last[name], now: c[name] };
  }
  const delta = sub(c, state.last);
  return { kind: 'delta', state: { bootId: msg.bootId, seq: msg.seq, last: { ...c }, total: add(state.total, delta) }, delta, lost: ahead - 1 };
}

const add = (a: Counters, b: Counters): Counters => ({ runtimeS: a.runtimeS + b.runtimeS, activeS: a.activeS + b.activeS, samples: a.samples + b.samples, energyWh: a.energyWh + b.energyWh });
const sub = (a: Counters, b: Counters): Counters => ({ runtimeS: a.runtimeS - b.runtimeS, activeS: a.activeS - b.activeS, samples: a.samples - b.samples, energyWh: a.energyWh - b.energyWh });
