/**
 * Does the ledger hold what the gateway sent? Totals per record type, action and unit over a
 * period, from the outbox on one side and from the ledger on the other, and their differences.
 */
import type { LedgerRecord, LedgerTotals, LedgerTransport } from '../../../ledger-client/src/types.js';
import { totalsOf } from '../../../ledger-client/src/totals.js';
import type { Outbox } from './outbox.js';

export interface Difference {
  key: string;
  gateway: number;
  ledger: number;
}

export interface Reconciliation {
  from: string;
  to: string;
  gateway: LedgerTotals;
  ledger: LedgerTotals;
  differences: Difference[];
}

/** Sums compared to a millionth: quantities are decimal numbers on the wire. */
const same = (a: number, b: number) => Math.abs(a - b) < 1e-6;

export function compareTotals(gateway: LedgerTotals, ledger: LedgerTotals): Difference[] {
  const keys = [...new Set([...Object.keys(gateway.sums), ...Object.keys(ledger.sums)])].sort();
  const differences = keys.map((key) => ({ key, gateway: gateway.sums[key] ?? 0, ledger: ledger.sums[key] ?? 0 })).filter((d) => !same(d.gateway, d.ledger));
  if (gateway.records !== ledger.records) differences.unshift({ key: 'records', gateway: gateway.records, ledger: ledger.records });
  return differences;
}

export async function reconcile(outbox: Outbox, transport: LedgerTransport, from: string, to: string): Promise<Reconciliation> {
  const records: LedgerRecord[] = outbox.recordsBetween(from, to);
  const gateway = totalsOf(records);
  const ledger = await transport.totals(from, to);
  return { from, to, gateway, ledger, differences: compareTotals(gateway, ledger) };
}
