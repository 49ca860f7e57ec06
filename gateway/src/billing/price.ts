/**
 * What a session costs: billed time, usage fee, material and technician, in integer minor
 * units. Pure: the session's measured usage and the tariff in, figures out.
 *
 * The measured inputs arrive as Numbers (seconds to 0.1 s, grams to the milligram). They are
 * read as integers first — milliseconds, milligrams, seconds of technician time — and every
 * figure after that is exact integer arithmetic against the exactly parsed decimal rates.
 */
import { MAX_MINOR_UNIT } from '../../../ledger-client/src/money.js';
import { BillingError, parseDecimal, roundHalfUp, roundHalfUpSafe, toMinor } from './money.js';

export interface SessionUsage {
  /** Wall time of the session, seconds (monotonic clock). */
  durationS: number;
  /** Seconds the tool was actually busy. */
  activeS: number;
  /** Material used, grams. */
  filamentG: number;
  /** Technician time, minutes. */
  technicianMin: number;
  /** The affiliate brought their own material: it is not charged. */
  ownMaterial: boolean;
}

export interface Tariff {
  /** Per hour of billed time, decimal string in major units ("8.00"). */
  hourlyRate: string;
  /** Which time is billed: the whole session, or only the time the tool was busy. */
  billedTime: 'session' | 'active';
  /** Billed time is rounded up to whole increments of this many minutes (integer ≥ 1). */
  incrementMin: number;
  /** The usage fee of a session with any billed time is at least this (decimal string, an amount). */
  minimumCharge: string;
  chargeMaterial: boolean;
  /** false: the figures are the session's value (e.g. project or R&D use), and no money is owed. */
  cash: boolean;
}

export interface PriceOptions {
  /** Decimals of the deployment's currency, 0–4 (2 for cents). */
  minorUnit: number;
  /** Per gram, decimal string; null: material is not charged. */
  materialPricePerGram: string | null;
  technicianRatePerHour: string;
}

/** Every amount is an integer in minor units. */
export interface Price {
  billedMin: number;
  usage: number;
  material: number;
  technician: number;
  /** usage + material + technician. */
  total: number;
  /** Copied from the tariff: false means the figures record what the use was worth; nothing is owed. */
  cash: boolean;
}

/** A rate as an exact fraction of minor units per unit: n / d. nn and dn are the same as Numbers, NaN when not safe integers. */
interface Rate {
  n: bigint;
  d: bigint;
  nn: number;
  dn: number;
}

const asSafe = (v: bigint) => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : NaN);

// Config strings repeat for every session: parse each once per currency. The caches only
// remember results of pure functions, so they change no result.
const CACHE_LIMIT = 1024;
const rates = Array.from({ length: MAX_MINOR_UNIT + 1 }, () => new Map<string, Rate>());
const amounts = Array.from({ length: MAX_MINOR_UNIT + 1 }, () => new Map<string, number>());

function rateOf(s: string, minorUnit: number, what: string): Rate {
  const cache = rates[minorUnit]!;
  let r = cache.get(s);
  if (r === undefined) {
    const { units, scale } = parseDecimal(s, what);
    const n = scale >= minorUnit ? units : units * 10n ** BigInt(minorUnit - scale);
    const d = scale >= minorUnit ? 10n ** BigInt(scale - minorUnit) : 1n;
    r = { n, d, nn: asSafe(n), dn: asSafe(d) };
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(s, r);
  }
  return r;
}

function amountOf(s: string, minorUnit: number, what: string): number {
  const cache = amounts[minorUnit]!;
  let a = cache.get(s);
  if (a === undefined) {
    a = toMinor(s, minorUnit, what);
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(s, a);
  }
  return a;
}

/** qty × rate / per, rounded half up to a whole minor unit. Number arithmetic while it is exact, BigInt beyond. */
function charge(qty: number, r: Rate, per: number, what: string): number {
  const num = qty * r.nn;
  const den = r.dn * per;
  if (num <= Number.MAX_SAFE_INTEGER && den <= Number.MAX_SAFE_INTEGER) return roundHalfUpSafe(num, den);
  const v = roundHalfUp(BigInt(qty) * r.n, r.d * BigInt(per));
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BillingError(`${what} is too large to bill`);
  return Number(v);
}

/** A measured quantity read as a whole number of `perUnit`ths, e.g. seconds as milliseconds. */
function whole(v: number, perUnit: number, what: string): number {
  if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new BillingError(`${what} must be a finite number ≥ 0, got ${String(v)}`);
  const x = Math.round(v * perUnit);
  if (!Number.isSafeInteger(x)) throw new BillingError(`${what} ${v} is too large`);
  return x;
}

export function priceSession(input: SessionUsage, tariff: Tariff, opts: PriceOptions): Price {
  const mu = opts.minorUnit;
  if (!Number.isInteger(mu) || mu < 0 || mu > MAX_MINOR_UNIT) {
    throw new BillingError(`minorUnit must be an integer from 0 to ${MAX_MINOR_UNIT} (the currency's number of decimals, 2 for cents), got ${String(mu)}`);
  }
  const inc = tariff.incrementMin;
  if (!Number.isSafeInteger(inc) || inc < 1) throw new BillingError(`tariff.incrementMin must be a whole number of minutes ≥ 1, got ${String(inc)}`);
  if (tariff.billedTime !== 'session' && tariff.billedTime !== 'active') {
    throw new BillingError(`tariff.billedTime must be "session" or "active", got ${JSON.stringify(tariff.billedTime)}`);
  }

  // Every configured rate is parsed on every call, used or not, so a bad value in config
  // fails the first session priced rather than the first one that happens to need it.
  const hourly = rateOf(tariff.hourlyRate, mu, 'tariff.hourlyRate');
  const minimum = amountOf(tariff.minimumCharge, mu, 'tariff.minimumCharge');
  const perGram = opts.materialPricePerGram === null ? null : rateOf(opts.materialPricePerGram, mu, 'materialPricePerGram');
  const techRate = rateOf(opts.technicianRatePerHour, mu, 'technicianRatePerHour');

  // Times are read to the millisecond: finer than the 0.1 s they are recorded at, and it
  // drops float noise (900.0000000001 s is 900 s) instead of billing it as another increment.
  const sessionMs = whole(input.durationS, 1000, 'durationS');
  const activeMs = whole(input.activeS, 1000, 'activeS');
  const timeMs = tariff.billedTime === 'session' ? sessionMs : activeMs;
  // Billed time: rounded UP to whole increments (0 s is nothing, 1 ms is one increment).
  const incMs = inc * 60_000;
  const rest = timeMs % incMs;
  const increments = (timeMs - rest) / incMs + (rest > 0 ? 1 : 0);
  const billedMin = increments * inc;
  if (!Number.isSafeInteger(billedMin)) throw new BillingError(`billed time of ${timeMs} ms in ${inc}-minute increments is too large`);

  // Usage fee: hourlyRate × billedMin / 60, rounded half up to the minor unit; then raised
  // to the minimum charge when any time is billed (a session with no billed time costs nothing).
  let usage = charge(billedMin, hourly, 60, 'the usage fee');
  if (billedMin > 0 && usage < minimum) usage = minimum;

  // Material: grams (read to the milligram, the resolution sessions record) × price per gram,
  // rounded half up. Nothing when the tariff does not charge it, the affiliate brought their
  // own, or no price is configured.
  const mg = whole(input.filamentG, 1000, 'filamentG');
  const material = tariff.chargeMaterial && !input.ownMaterial && perGram !== null ? charge(mg, perGram, 1000, 'the material charge') : 0;

  // Technician: minutes (read to the second) × rate per hour / 60, rounded half up.
  const techS = whole(input.technicianMin, 60, 'technicianMin');
  const technician = charge(techS, techRate, 3600, 'the technician charge');

  const total = usage + material + technician;
  if (!Number.isSafeInteger(total)) throw new BillingError(`the session total is too large to bill`);
  return { billedMin, usage, material, technician, total, cash: tariff.cash };
}
