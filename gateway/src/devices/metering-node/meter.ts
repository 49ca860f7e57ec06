/**
 * A device's cumulative counters into totals that survive lost, repeated, late and replayed
 * readings, reboots, wrap-around and readings that cannot be true. Pure: state, reading and a
 * clock reading in; the next state, what to add and what was set aside out. The metering node
 * uses it here; the networked instruments' counters.ts builds on it.
 *
 * Boots. A device restarts its counters at zero at every boot and draws a new random boot id.
 * The state remembers the current boot and the PAST_BOOTS before it, each with the counters it
 * ended at: a frame of one of those is stale (late, or replayed) and never starts a boot. Any
 * other boot id starts a new boot: the previous one is closed at its last good counters and the
 * new one counted from zero.
 *
 * Physics. Within a boot each counter is judged on its own. It grows by the difference to its
 * last good value modulo 2^width (a counter that wraps at its width goes on counting; one
 * without a width must not go down), and by no more than its maximum rate allows over the time
 * since its last good value, plus `toleranceS` seconds at that rate for frames that arrive late
 * or bunched together (allowance left unused carries over, up to that much). So over any
 * stretch of time a counter gains at most rate × (stretch + tolerance). A counter whose growth
 * is implausible is set aside: its last good value stays, and the next plausible reading
 * resumes from it; the reading's other counters still count.
 */

/** What one counter can do. */
export interface CounterLimit {
  /** Bits after which the device's counter wraps to 0; null: it never wraps (and never goes down). */
  width: number | null;
  /** The most it can grow per second of the gateway's clock (Infinity: no bound). */
  perS: number;
}

export interface Physics<N extends string> {
  counters: Record<N, CounterLimit>;
  /** Allowance for late and bunched frames, in seconds at each counter's rate. */
  toleranceS: number;
}

/** One counter of the current boot. */
export interface Track {
  /** Its last good value, as the device sent it. */
  value: number;
  /** Clock reading (ms) of that value; null when unknown (the first boot the gateway sees): the next reading is taken as it is. */
  at: number | null;
  /** Allowance left unused, in seconds at the counter's rate (at most the tolerance). */
  creditS: number;
}

export interface PastBoot<N extends string> {
  bootId: number;
  /** The counters it ended at; null when a state saved by an earlier version did not keep them. */
  last: Record<N, number> | null;
}

export interface BootMeter<N extends string> {
  bootId: number;
  tracks: Record<N, Track>;
  /** Sum over every boot, this one up to its tracks' values. */
  total: Record<N, number>;
  /** Clock reading (ms) of the last frame of this boot: a next boot began after it. */
  seenAt: number;
  /** The boots before this one, newest first, at most PAST_BOOTS: their frames are stale. */
  past: PastBoot<N>[];
}

/** How many boots before the current one are remembered. Boot ids are random: a new boot meets one of these only by a chance of a few in 2^32. */
export const PAST_BOOTS = 8;

export type BootStep<N extends string> =
  | { kind: 'current'; state: BootMeter<N> }
  /** The previous boot (if any) is closed at its last good counters; the new one counts from zero. */
  | { kind: 'reboot'; state: BootMeter<N>; previousBootId: number | null }
  /** A frame of a past boot: nothing changes. */
  | { kind: 'stale'; state: BootMeter<N>; boot: PastBoot<N> };

/** A counter set aside: its growth since its last good value is more than the device could have done. */
export interface Implausible<N extends string> {
  counter: N;
  was: number;
  now: number;
  /** The growth it claims (modulo its width). */
  growth: number;
  /** The most it could have grown. */
  allowed: number;
}

export interface ReadingStep<N extends string> {
  state: BootMeter<N>;
  /** What each counter adds to the totals (0 for those set aside). */
  delta: Record<N, number>;
  implausible: Implausible<N>[];
}

const namesOf = <N extends string>(physics: Physics<N>) => Object.keys(physics.counters) as N[];

/** The boot a frame belongs to (every frame carrying a boot id, at `now` on the gateway's clock). */
export function applyBoot<N extends string>(state: BootMeter<N> | null, bootId: number, now: number, physics: Physics<N>): BootStep<N> {
  if (state?.bootId === bootId) return { kind: 'current', state: { ...state, seenAt: now } };
  const past = state?.past.find((b) => b.bootId === bootId);
  if (state && past) return { kind: 'stale', state, boot: past };
  const names = namesOf(physics);
  // The node booted after the last frame of its previous boot: that bounds what the new one counted.
  const track: Track = { value: 0, at: state?.seenAt ?? null, creditS: physics.toleranceS };
  const fresh: BootMeter<N> = {
    bootId,
    tracks: Object.fromEntries(names.map((n) => [n, { ...track }])) as Record<N, Track>,
    total: state ? { ...state.total } : (Object.fromEntries(names.map((n) => [n, 0])) as Record<N, number>),
    seenAt: now,
    past: state ? [{ bootId: state.bootId, last: lastValues(state) }, ...state.past].slice(0, PAST_BOOTS) : [],
  };
  return { kind: 'reboot', state: fresh, previousBootId: state?.bootId ?? null };
}

/** A reading of the current boot's counters, at `now` (ms) on the gateway's clock. */
export function applyReading<N extends string>(state: BootMeter<N>, reading: Record<N, number>, now: number, physics: Physics<N>): ReadingStep<N> {
  const tracks = {} as Record<N, Track>;
  const total = {} as Record<N, number>;
  const delta = {} as Record<N, number>;
  const implausible: Implausible<N>[] = [];
  for (const name in physics.counters) {
    const t = state.tracks[name];
    const limit = physics.counters[name];
    const value = reading[name];
    const growth = counterGrowth(t.value, value, limit.width);
    const allowedS = t.at === null ? Infinity : t.creditS + Math.max(0, now - t.at) / 1000;
    const allowed = limit.perS === Infinity ? Infinity : allowedS * limit.perS;
    const plausible = growth >= 0 && growth <= allowed;
    if (!plausible) implausible.push({ counter: name, was: t.value, now: value, growth, allowed });
    const usedS = limit.perS === Infinity ? 0 : growth / limit.perS;
    tracks[name] = plausible ? { value, at: now, creditS: Math.min(physics.toleranceS, allowedS - usedS) } : t;
    total[name] = state.total[name] + (plausible ? growth : 0);
    delta[name] = plausible ? growth : 0;
  }
  return { state: { bootId: state.bootId, tracks, total, seenAt: now, past: state.past }, delta, implausible };
}

/** For a person: `activeS 10000012 after 12, +10000000 where at most 18.9 was possible`. */
export function describeImplausible(found: Implausible<string>[]): string {
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return found.map((i) => `${i.counter} ${i.now} after ${i.was}, ${i.growth < 0 ? 'down' : `+${round(i.growth)}`} where at most ${round(i.allowed)} was possible`).join('; ');
}

/** How far a counter went from `last` to `now`: modulo 2^width when it wraps, else the plain difference (negative: it went down). */
export function counterGrowth(last: number, now: number, width: number | null): number {
  if (width === null) return now - last;
  const span = 2 ** width;
  return (((now - last) % span) + span) % span;
}

/** The current boot and the ones remembered before it, newest first, each with the counters it is at or ended at (for health). */
export function recentBoots<N extends string>(state: BootMeter<N>): PastBoot<N>[] {
  return [{ bootId: state.bootId, last: lastValues(state) }, ...state.past];
}

/** Each counter's last good value in this boot. */
export function lastValues<N extends string>(state: BootMeter<N>): Record<N, number> {
  return Object.fromEntries(Object.entries<Track>(state.tracks).map(([n, t]) => [n, t.value])) as Record<N, number>;
}

// ---- the metering node's counters ----

export const COUNTER_NAMES = ['energyMwh', 'relayOnS', 'activeS', 'filamentMm'] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];
export type MeterCounters = Record<CounterName, number>;
export type MeterState = BootMeter<CounterName>;

/** A node's frames come straight off a serial line: late only by a busy link or a TCP bridge's buffer. */
export const NODE_TOLERANCE_S = 10;
/** Filament an encoder can see move, mm a second: the fastest hotends take about 40 mm/s of 1.75 mm filament. */
export const MAX_FILAMENT_MM_PER_S = 100;

/**
 * The node's physics: `widths` from the METER message's fields, the rest from its config. Time
 * counters run at most at `maxClockRate` seconds a second, energy at `maxPowerW` over that time.
 */
export function nodePhysics(cfg: { maxPowerW: number; maxClockRate: number }, widths: Record<CounterName, number>): Physics<CounterName> {
  const rate = cfg.maxClockRate;
  return {
    counters: {
      energyMwh: { width: widths.energyMwh, perS: (cfg.maxPowerW * 1000 * rate) / 3600 },
      relayOnS: { width: widths.relayOnS, perS: rate },
      activeS: { width: widths.activeS, perS: rate },
      filamentMm: { width: widths.filamentMm, perS: MAX_FILAMENT_MM_PER_S * rate },
    },
    toleranceS: NODE_TOLERANCE_S,
  };
}
