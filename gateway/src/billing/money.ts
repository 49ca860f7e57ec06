/**
 * Exact money. Amounts are integers in the currency's minor unit (cents for 2 decimals);
 * rates and prices come from config as decimal strings and are parsed exactly, so no binary
 * floating point ever takes part in money arithmetic. Pure: no I/O, no clock. Amounts are
 * written as text by formatMinor, in the ledger client, whose records carry them too.
 */
import { z } from 'zod';
import { formatMinor, MAX_MINOR_UNIT } from '../../../ledger-client/src/money.js';

/** Thrown for any value billing cannot use; the message says which value, what was wrong and what to write. */
export class BillingError extends Error {
  override name = 'BillingError';
}

/** An exact non-negative decimal: `units / 10^scale` ("8.50" is 850n at scale 2). */
export interface Decimal {
  readonly units: bigint;
  readonly scale: number;
}

/** 10^15 is the largest power of ten below 2^53, so a decimal's denominator always fits a Number. */
export const MAX_DECIMALS = 15;

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;
const TEN = 10n;

/** `what "text"` or just `"text"`. */
const quoted = (text: string, what: string | undefined) => (what ? `${what} "${text}"` : `"${text}"`);

/** The most likely intended spelling of a near-miss, for the error message. */
function hint(s: string): string {
  const t = s.trim();
  if (t !== s && DECIMAL.test(t)) return `write ${t} (no spaces)`;
  if (/^\d{1,3}(,\d{3})+(\.\d+)?$/.test(t)) return `write ${t.replaceAll(',', '')} (no thousands separators; the decimal point is ".")`;
  if (/^\d+,\d+$/.test(t)) return `write ${t.replace(',', '.')}`;
  if (/^\.\d+$/.test(t)) return `write 0${t}`;
  if (/^\d+\.$/.test(t)) return `write ${t.slice(0, -1)}`;
  return 'write digits with at most one decimal point, e.g. 8.50';
}

/**
 * Parses a non-negative decimal string ("8.50", "0.025", "1.2", "12") exactly.
 * `what` names the value in errors: `rate "8,50" is not a decimal number: write 8.50`.
 */
export function parseDecimal(s: string, what?: string): Decimal {
  if (typeof s !== 'string') {
    throw new BillingError(`${what ?? 'value'} must be a decimal number written as a string, e.g. "8.50" (got ${typeof s} ${String(s)}: a YAML or JSON number may already have lost digits)`);
  }
  const m = DECIMAL.exec(s);
  if (!m) {
    if (s.trim() === '') throw new BillingError(`${what ?? 'value'} is empty: write a number such as 8.50`);
    if (/^-\s*\d/.test(s.trim())) throw new BillingError(`${quoted(s, what)} is negative: write 0 or more`);
    throw new BillingError(`${quoted(s, what)} is not a decimal number: ${hint(s)}`);
  }
  const frac = m[2] ?? '';
  if (frac.length > MAX_DECIMALS) throw new BillingError(`${quoted(s, what)} has ${frac.length} decimals; at most ${MAX_DECIMALS} are kept exactly`);
  return { units: BigInt(m[1]! + frac), scale: frac.length };
}

/** Writes a decimal back as text, without trailing zeros beyond the point ("8.5", "12"). */
export function formatDecimal(d: Decimal): string {
  const digits = d.units.toString().padStart(d.scale + 1, '0');
  if (d.scale === 0) return digits;
  const int = digits.slice(0, -d.scale);
  const frac = digits.slice(-d.scale).replace(/0+$/, '');
  return frac ? `${int}.${frac}` : int;
}

function checkMinorUnit(minorUnit: number): void {
  if (!Number.isInteger(minorUnit) || minorUnit < 0 || minorUnit > MAX_MINOR_UNIT) {
    throw new BillingError(`minorUnit must be an integer from 0 to ${MAX_MINOR_UNIT} (the currency's number of decimals, 2 for cents), got ${String(minorUnit)}`);
  }
}

/**
 * An amount in minor units, exactly. Trailing zeros are fine ("8.500" is 850 cents); a value
 * with more significant decimals than the currency has is refused rather than rounded, since an
 * amount in config that cannot be paid is a mistake to fix, not to hide.
 */
export function toMinor(value: string | Decimal, minorUnit: number, what = 'amount'): number {
  checkMinorUnit(minorUnit);
  const d = typeof value === 'string' ? parseDecimal(value, what) : value;
  let minor: bigint;
  if (d.scale <= minorUnit) {
    minor = d.units * TEN ** BigInt(minorUnit - d.scale);
  } else {
    const div = TEN ** BigInt(d.scale - minorUnit);
    if (d.units % div !== 0n) {
      const text = typeof value === 'string' ? value : formatDecimal(d);
      const nearest = formatMinor(roundHalfUp(d.units, div), minorUnit);
      throw new BillingError(`${quoted(text, what)} has more decimals than the currency's ${minorUnit}: write e.g. ${nearest}`);
    }
    minor = d.units / div;
  }
  if (minor > BigInt(Number.MAX_SAFE_INTEGER)) throw new BillingError(`${what} "${formatDecimal(d)}" is too large`);
  return Number(minor);
}

/**
 * num / den rounded to the nearest integer, a half rounded up: 0.5 → 1, 2.5 → 3. For negative
 * values halves go away from zero (-0.5 → -1), so the rule is symmetric; billing only rounds
 * non-negative values. `den` must be positive.
 */
export function roundHalfUp(num: bigint, den: bigint): bigint {
  if (den <= 0n) throw new RangeError(`roundHalfUp: the denominator must be positive, got ${den}`);
  if (num < 0n) return -roundHalfUp(-num, den);
  return (2n * num + den) / (2n * den);
}

/**
 * roundHalfUp for safe integers num ≥ 0 and den ≥ 1, without BigInt. See floorDiv for why
 * the Number quotient is exact.
 */
export function roundHalfUpSafe(num: number, den: number): number {
  const q = floorDiv(num, den);
  const r = num - q * den;
  return r >= den - r ? q + 1 : q;
}

/**
 * floor(num / den) for safe integers num ≥ 0 and den ≥ 1. The division rounds by at most
 * num/den × 2^-53 < 1/den, while a quotient that is not whole lies at least 1/den below the
 * next integer: it can never round up onto it, so the floor is exact. (`%` on doubles would
 * be exact too, but calls fmod and is several times slower.)
 */
export function floorDiv(num: number, den: number): number {
  return Math.floor(num / den);
}

/**
 * A non-negative decimal string in config ("8.50", "0.025"). Kept as the string: parse it with
 * parseDecimal or toMinor where it is used, so it is never a binary float on the way.
 */
export const decimalString = z
  .string({ error: (iss) => (iss.input === undefined ? undefined : 'write the number as a string in quotes, e.g. "8.50": a YAML or JSON number may already have lost digits') })
  .superRefine((s, ctx) => {
    try {
      parseDecimal(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  })
  .describe('A non-negative decimal number written as a string, e.g. "8.50" (read exactly, never as a binary float).');
