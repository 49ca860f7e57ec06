/**
 * A networked instrument's cumulative counters into totals that survive lost, repeated and
 * reordered messages and the device's reboots. Pure: state and message in, next state out.
 *
 * Within one boot (`bootId`) the counters only grow, so the difference to the last accepted
 * message is what happened in between, however many messages were lost. A message whose
 * `seq` is not newer than the last accepted one is a repeat (QoS 1 redelivery) or arrived
 * late, and is ignored. A new `bootId` closes the previous boot at its last counters and
 * counts the new one from zero. The ids of the last few boots before it are kept: a message of
 * one of them arriving late (a redelivery, or the old connection's last message overtaken by
 * the new one's first) is stale too, so that neither that boot nor the current one is counted
 * twice. Boot ids are drawn at random, so a new boot meets one of these only by a chance of a
 * few in 2^32.
 */

export const COUNTERS = ['runtimeS', 'activeS', 'samples', 'energyWh'] as const;
export type Counters = Record<(typeof COUNTERS)[number], number>;

export const NO_COUNTS: Counters = { runtimeS: 0, activeS: 0, samples: 0, energyWh: 0 };

/** How many boots before the current one are remembered. */
export const PAST_BOOTS = 8;

export interface CounterState {
  bootId: number;
  seq: number;
  /** Counters of the last accepted message of this boot. */
  last: Counters;
  /** Over every boot, this one up to `last`. */
  total: Counters;
  /** The boots before this one, newest first, at most PAST_BOOTS: their messages are stale. */
  pastBootIds: number[];
}

export type CounterStep =
  | { kind: 'delta'; state: CounterState; delta: Counters; lost: number }
  | { kind: 'reboot'; state: CounterState; delta: Counters; previousBootId: number | null }
  /** Not newer than the last accepted message of this boot (a repeat or a late one), or of a past boot. */
  | { kind: 'stale'; state: CounterState }
  /** A counter went down within one boot: the message is ignored. */
  | { kind: 'inconsistent'; state: CounterState; counter: keyof Counters; was: number; now: number };

/** `lost`: messages missing between the last accepted one and this one (seq gap). */
export function applyTelemetry(state: CounterState | null, msg: { bootId: number; seq: number; counters: Counters }): CounterStep {
  const c = msg.counters;
  if (state === null) return { kind: 'reboot', state: { bootId: msg.bootId, seq: msg.seq, last: { ...c }, total: { ...c }, pastBootIds: [] }, delta: { ...c }, previousBootId: null };
  if (state.pastBootIds.includes(msg.bootId)) return { kind: 'stale', state };
  if (state.bootId !== msg.bootId) {
    const pastBootIds = [state.bootId, ...state.pastBootIds].slice(0, PAST_BOOTS);
    return { kind: 'reboot', state: { bootId: msg.bootId, seq: msg.seq, last: { ...c }, total: add(state.total, c), pastBootIds }, delta: { ...c }, previousBootId: state.bootId };
  }
  const ahead = (msg.seq - state.seq) >>> 0; // seq wraps at 2^32
  if (ahead === 0 || ahead > 0x8000_0000) return { kind: 'stale', state };
  for (const name of COUNTERS) {
    if (c[name] < state.last[name]) return { kind: 'inconsistent', state, counter: name, was: state.last[name], now: c[name] };
  }
  const delta = sub(c, state.last);
  return { kind: 'delta', state: { ...state, seq: msg.seq, last: { ...c }, total: add(state.total, delta) }, delta, lost: ahead - 1 };
}

const add = (a: Counters, b: Counters): Counters => ({ runtimeS: a.runtimeS + b.runtimeS, activeS: a.activeS + b.activeS, samples: a.samples + b.samples, energyWh: a.energyWh + b.energyWh });
const sub = (a: Counters, b: Counters): Counters => ({ runtimeS: a.runtimeS - b.runtimeS, activeS: a.activeS - b.activeS, samples: a.samples - b.samples, energyWh: a.energyWh - b.energyWh });
