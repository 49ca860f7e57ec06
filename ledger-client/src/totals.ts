/**
 * Totals of records for reconciliation: how many records, and per `${type}:${action}:${unit}`
 * the sum of their quantities (a process has no quantity; it counts as a record only). The
 * gateway computes them over what it sent, the ledger over what it holds; they must agree.
 *
 * Quantities travel as JSON numbers whose decimal text is exact (12.34 CAD, 3.25 g), so they
 * are summed as decimals, not binary floats: 0.1 + 0.2 is 0.3 here, and money adds up to the cent.
 */
import { decimalText } from './money.js';
import type { LedgerTotals, Measure } from './types.js';

interface Dec {
  units: bigint;
  scale: number;
}

/** The exact decimal a Number's shortest text stands for ("1.5e-7" included). */
function decimalOf(v: number): Dec {
  if (!Number.isFinite(v)) throw new Error(`a quantity must be a finite number, got ${v}`);
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(v));
  if (!m) throw new Error(`cannot read ${v} as a decimal`);
  const [, sign, int, frac = '', exp = '0'] = m;
  let units = BigInt(`${sign}${int}${frac}`);
  let scale = frac.length - Number(exp);
  if (scale < 0) {
    units *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { units, scale };
}

const add = (a: Dec, b: Dec): Dec => {
  const scale = Math.max(a.scale, b.scale);
  return { units: a.units * 10n ** BigInt(scale - a.scale) + b.units * 10n ** BigInt(scale - b.scale), scale };
};

/** What totals read of a record: a ledger's copy gives as much (graphql.ts reads it from the lists). */
export type Totalled = { type: 'process' } | { type: 'economic-event' | 'claim'; action: string; resourceQuantity?: Measure; effortQuantity?: Measure };

/** The key a quantity of a record is summed under. */
export const totalsKey = (r: Totalled, m: Measure) => `${r.type}:${r.type === 'process' ? '' : r.action}:${m.hasUnit}`;

export function totalsOf(records: Iterable<Totalled>): LedgerTotals {
  const sums = new Map<string, Dec>();
  let count = 0;
  for (const r of records) {
    count++;
    if (r.type === 'process') continue;
    for (const m of [r.resourceQuantity, r.effortQuantity]) {
      if (!m) continue;
      const key = totalsKey(r, m);
      const d = decimalOf(m.hasNumericalValue);
      const s = sums.get(key);
      sums.set(key, s ? add(s, d) : d);
    }
  }
  return { records: count, sums: Object.fromEntries([...sums].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, d]) => [k, Number(decimalText(d.units, d.scale))])) };
}
