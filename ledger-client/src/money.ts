/**
 * Amounts as exact decimal text. Money is an integer in the currency's minor unit (cents for 2
 * decimals) and leaves as text, so no binary floating point ever rounds it. The gateway's
 * billing writes its amounts with the same functions. Pure: no I/O.
 */

/** Currencies have 0 (yen) to 4 decimals (Chilean UF); nothing in use has more. */
export const MAX_MINOR_UNIT = 4;

/** `units / 10^scale` as decimal text, every decimal kept: (-5n, 2) → "-0.05", (1500n, 0) → "1500". */
export function decimalText(units: bigint, scale: number): string {
  const neg = units < 0n;
  const digits = (neg ? -units : units).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return neg ? `-${text}` : text;
}

/** 123456 at 2 decimals → "1234.56"; 5 → "0.05"; at 0 decimals → "123456". */
export function formatMinor(minor: number | bigint, minorUnit: number): string {
  if (!Number.isInteger(minorUnit) || minorUnit < 0 || minorUnit > MAX_MINOR_UNIT) {
    throw new RangeError(`minorUnit must be an integer from 0 to ${MAX_MINOR_UNIT} (the currency's number of decimals, 2 for cents), got ${String(minorUnit)}`);
  }
  if (typeof minor === 'number' && !Number.isSafeInteger(minor)) throw new RangeError(`an amount in minor units must be a safe integer, got ${minor}`);
  return decimalText(BigInt(minor), minorUnit);
}
