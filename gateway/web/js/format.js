/**
 * How figures are shown: money in the API's currency, times in the browser's locale. Amounts
 * come either as decimal strings ("12.34") or as integers in minor units with their minorUnit.
 */
const moneyFormats = new Map();
function moneyFormat(currency, digits) {
  const key = `${currency}/${digits}`;
  if (!moneyFormats.has(key)) {
    moneyFormats.set(key, new Intl.NumberFormat(undefined, { style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits }));
  }
  return moneyFormats.get(key);
}

/** A decimal string amount, e.g. money("12.30", "CAD"). Display only: arithmetic stays in the gateway. */
export function money(amount, currency) {
  if (amount === null || amount === undefined) return '—';
  const digits = String(amount).split('.')[1]?.length ?? 0;
  try {
    return moneyFormat(currency, digits).format(Number(amount));
  } catch {
    return `${amount} ${currency ?? ''}`.trim();
  }
}

/** An amount in minor units (cents), e.g. minor(1230, "CAD", 2). */
export function minor(units, currency, minorUnit) {
  if (units === null || units === undefined) return '—';
  return money(toDecimal(units, minorUnit), currency);
}

/** Minor units as an exact decimal string. */
export function toDecimal(units, minorUnit) {
  const neg = units < 0;
  const s = String(neg ? -units : units).padStart(minorUnit + 1, '0');
  const whole = minorUnit ? `${s.slice(0, -minorUnit)}.${s.slice(-minorUnit)}` : s;
  return neg ? `-${whole}` : whole;
}

/** The exact sum of decimal strings, as a decimal string. */
export function sumDecimals(amounts) {
  const digits = Math.max(0, ...amounts.map((a) => String(a).split('.')[1]?.length ?? 0));
  let total = 0n;
  for (const a of amounts) {
    const [w, f = ''] = String(a).replace('-', '').split('.');
    const v = BigInt(w + f.padEnd(digits, '0'));
    total += String(a).startsWith('-') ? -v : v;
  }
  return toDecimal(total, digits);
}

const number1 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const number0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export const count = (n) => number0.format(n);
export const grams = (g) => (g === null || g === undefined ? '—' : `${number1.format(g)} g`);
export const energy = (wh) => (wh === null || wh === undefined ? '—' : wh >= 1000 ? `${number1.format(wh / 1000)} kWh` : `${number1.format(wh)} Wh`);
/** Run hours, always to a tenth: "0.0 h", "250.0 h". */
export const hours = (h) => `${number1.format(h)} h`;
export const celsius = (c) => (typeof c === 'number' ? `${number0.format(c)} °C` : '—');
const percentFormat = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 0 });
/** A fraction as the locale writes a percentage: 0.42 → "42%". */
export const percent = (x) => percentFormat.format(x);

/** Seconds with their units: "42 s", "1 min 18 s", "2 h 05 min". */
export function duration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return '—';
  const t = Math.max(0, Math.floor(s));
  const [hh, mm, ss] = [Math.floor(t / 3600), Math.floor((t % 3600) / 60), t % 60];
  const two = (n) => String(n).padStart(2, '0');
  return hh ? `${hh} h ${two(mm)} min` : mm ? `${mm} min ${two(ss)} s` : `${ss} s`;
}

const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
const monthFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'long', timeZone: 'UTC' });

export const dateTime = (iso) => (iso ? dateTimeFormat.format(new Date(iso)) : '—');
export const time = (iso) => (iso ? timeFormat.format(new Date(iso)) : '—');
/** "2026-11" as "November 2026". */
export const monthName = (ym) => monthFormat.format(new Date(`${ym}-01T00:00:00Z`));

/** How long ago, roughly: "12 s ago", "5 min ago", or the date. */
export function ago(iso, now = Date.now()) {
  if (!iso) return 'never';
  const s = Math.round((now - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.max(0, s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return dateTime(iso);
}

/** The month (YYYY-MM) of a date in the browser's time zone. */
export function monthOf(date = new Date()) {
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}`;
}

/**
 * Where a session's filament figure comes from, as a person reads it: the G-code file (exact),
 * the printer's counter (± its uncertainty, in grams where known) or an estimate from extruder
 * positions; with why the custodian should look at it. Null: no print job.
 */
export function materialSource(m) {
  if (!m) return null;
  const plusMinus = m.uncertaintyG !== null && m.uncertaintyG !== undefined ? grams(m.uncertaintyG) : m.uncertaintyMm !== null ? `${number0.format(m.uncertaintyMm)} mm` : null;
  const from =
    m.source === 'file'
      ? `From the G-code file${m.uncertaintyMm ? `, up to ${plusMinus} more` : ''}`
      : m.source === 'printer-counter'
        ? `From the printer's counter${plusMinus ? `, ± ${plusMinus}` : ''}`
        : 'Estimated from extruder positions';
  return m.flagged ? `${from}. To be checked: ${m.flagged}` : from;
}

/** A figure the custodian should confirm or correct: not from the file, or flagged. */
export const materialToCheck = (m) => Boolean(m && (m.source !== 'file' || m.flagged));
