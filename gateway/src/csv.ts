/**
 * CSV for spreadsheets, the one way the gateway writes it: quoting by csv-stringify, and a cell
 * that a spreadsheet would run as a formula (one starting with = + - @, a tab or a carriage
 * return, from a correction's reason say) neutralised with a leading apostrophe. A plain number,
 * "-2.00" among them, stays a number.
 */
import { stringify } from 'csv-stringify/sync';

const FORMULA_START = /^[=+\-@\t\r]/;
const PLAIN_NUMBER = /^[-+]?\d+(\.\d+)?$/;

/** A cell as a spreadsheet may read it without running anything. */
export function csvSafe(value: unknown): string {
  const s = value === null || value === undefined ? '' : String(value);
  return FORMULA_START.test(s) && !PLAIN_NUMBER.test(s) ? `'${s}` : s;
}

/** The header and rows as CSV text, every line ending in \n. */
export function toCsv(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return stringify([header, ...rows].map((r) => r.map(csvSafe)), { record_delimiter: 'unix' });
}
