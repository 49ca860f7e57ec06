/**
 * Turning a node's per-boot cumulative counters into totals that survive lost frames,
 * duplicated frames and node reboots. Pure: state in, state and delta out.
 */

export interface MeterCounters {
  energyMwh: number;
  relayOnS: number;
  activeS: number;
  filamentMm: number;
}

export const COUNTER_NAMES = ['energyMwh', 'relayOnS', 'activeS', 'filamentMm'] as const satisfies readonly (keyof MeterCounters)[];

export const ZERO: MeterCounters = { energyMwh: 0, relayOnS: 0, activeS: 0, filamentMm: 0 };

export interface MeterState {
  bootId: number;
  /** Last counters received in this boot. */
  last: MeterCounters;
  /** Sum over every boot, this one included up to `last`. */
  total: MeterCounters;
}

export type MeterStep =
  | { kind: 'delta'; state: MeterState; delta: MeterCounters }
  /** A new boot id: the previous boot is closed at its last counters, the new one counted from zero. */
  | { kind: 'reboot'; state: MeterState; delta: MeterCounters; previousBootId: number | null }
  /** Counters went down within one boot: the reading is ignored, the state unchanged. */
  | { kind: 'inconsistent'; state: MeterState; counter: keyof MeterCounters; was: number; now: number };

type RebootStep = Extract<MeterStep, { kind: 'reboot' }>;

function startBoot(state: MeterState | null, bootId: number, reading: MeterCounters): RebootStep {
  const total = add(state?.total ?? ZERO, reading);
  return { kind: 'reboot', state: { bootId, last: { ...reading }, total }, delta: { ...reading }, previousBootId: state?.bootId ?? null };
}

export function applyReading(state: MeterState | null, bootId: number, reading: MeterCounters): MeterStep {
  if (state === null || state.bootId !== bootId) return startBoot(state, bootId, reading);
  for (const name of COUNTER_NAMES) {
    if (reading[name] < state.last[name]) return { kind: 'inconsistent', state, counter: name, was: state.last[name], now: reading[name] };
  }
  const delta = sub(reading, state.last);
  return { kind: 'delta', state: { bootId, last: { ...reading }, total: add(state.total, delta) }, delta };
}

/** The boot announced by a HELLO or HEARTBEAT (no counters yet): counters start at zero if it is new. */
export function applyBoot(state: MeterState | null, bootId: number): RebootStep | null {
  return state?.bootId === bootId ? null : startBoot(state, bootId, ZERO);
}

function add(a: MeterCounters, b: MeterCounters): MeterCounters {
  return { energyMwh: a.energyMwh + b.energyMwh, relayOnS: a.relayOnS + b.relayOnS, activeS: a.activeS + b.activeS, filamentMm: a.filamentMm + b.filamentMm };
}

function sub(a: MeterCounters, b: MeterCounters): MeterCounters {
  return { energyMwh: a.energyMwh - b.energyMwh, relayOnS: a.relayOnS - b.relayOnS, activeS: a.activeS - b.activeS, filamentMm: a.filamentMm - b.filamentMm };
}
