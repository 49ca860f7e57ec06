/** A statement as the API and the command line give it: JSON, CSV (one row per charge or correction, amounts in major units) or a table for a terminal. */
import { materialNote } from '../../../ledger-client/src/mapping.js';
import { formatMinor } from '../../../ledger-client/src/money.js';
import { toCsv } from '../csv.js';
import type { Billing, PaybackProgress } from './billing.js';
import type { Statement } from './statement.js';

/**
 * The statement as JSON: `payback` is what the period paid each co-owner, `paybackProgress`
 * where each co-financed tool stands all told (what /api/billing/payback says).
 */
export function statementDocument(st: Statement, billing: Billing) {
  return { currency: billing.cfg.currency, minorUnit: billing.cfg.minorUnit, ...st, paybackProgress: billing.payback(), closedPeriods: billing.closedPeriods() };
}

/**
 * Where a row's material figure comes from: a charge's, its session's print jobs' (`file`,
 * `printer-counter`, `position-estimate`; empty without a print job); a correction of the grams,
 * `file` when metered from the file given after the print, else `custodian`; any other
 * correction leaves the material alone (empty).
 */
function materialSource(s: Statement['sessions'][number], e: Statement['sessions'][number]['entries'][number]): string {
  if (e.kind === 'charge') return s.material?.source ?? '';
  const change = e.correction!.change as { kind?: string; source?: string } | null;
  return change?.kind === 'material' ? (change.source ?? 'custodian') : '';
}

/**
 * One row per charge or correction. The columns added later (the affiliate's name, where the
 * usage fee goes: maintenance, infrastructure, payback) come after the first ones, which keep
 * their places for the spreadsheets that read them by position.
 */
export function statementCsv(st: Statement, currency: string, minorUnit: number): string {
  const money = (m: number) => formatMinor(m, minorUnit);
  const header = ['period', 'session', 'tool', 'affiliate', 'use_type', 'started_at', 'ended_at', 'billed_min', 'entry', 'cash', 'currency', 'usage', 'material', 'material_source', 'technician', 'total', 'value', 'reason', 'affiliate_name', 'maintenance', 'infrastructure', 'payback'];
  const rows = st.sessions.flatMap((s) =>
    s.entries.map((e) => [
      e.period,
      s.sessionId,
      s.toolId,
      s.affiliateId,
      e.useType,
      s.startedAt,
      s.endedAt,
      s.billedMin,
      e.kind === 'charge' ? 'charge' : `correction of ${e.correction!.corrects}`,
      e.cash ? 'yes' : 'no (value)',
      currency,
      money(e.items.usage),
      money(e.items.material),
      materialSource(s, e),
      money(e.items.technician),
      money(e.items.total),
      money(e.value),
      e.correction?.reason ?? '',
      s.affiliateName ?? '',
      money(e.split.maintenance),
      money(e.split.infrastructure),
      money(e.split.payback),
    ]),
  );
  return toCsv(header, rows);
}

export function statementTable(st: Statement, payback: readonly PaybackProgress[], currency: string, minorUnit: number): string {
  const money = (m: number) => formatMinor(m, minorUnit).padStart(10);
  const out: string[] = [`Statement ${st.from} … ${st.to}${st.affiliate ? ` for ${st.affiliate}` : ''}${st.tool ? ` at ${st.tool}` : ''} (${currency})`, ''];
  for (const s of st.sessions) {
    out.push(`${s.sessionId.slice(0, 8)}  ${s.toolId}  ${s.affiliateId}  ${s.startedAt ?? ''} → ${s.endedAt ?? ''}  ${s.billedMin ?? '-'} min${s.material ? `  material ${materialNote(s.material)}` : ''}`);
    for (const e of s.entries) {
      const what = e.kind === 'charge' ? `charge (${e.useType}${e.cash ? '' : ', value only'})` : `correction: ${e.correction!.reason}`;
      out.push(`    ${what.padEnd(40)} usage ${money(e.items.usage)}  material ${money(e.items.material)}  technician ${money(e.items.technician)}  total ${money(e.items.total)}${e.value ? `  value ${money(e.value)}` : ''}`);
    }
    if (s.entries.length > 1) out.push(`    ${'net'.padEnd(40)} usage ${money(s.net.usage)}  material ${money(s.net.material)}  technician ${money(s.net.technician)}  total ${money(s.net.total)}`);
  }
  out.push('', 'Funds (cash)');
  for (const k of ['material', 'technician', 'maintenance', 'infrastructure', 'payback', 'total'] as const) out.push(`  ${k.padEnd(16)}${money(st.funds[k])}`);
  if (st.value) out.push(`  value of uses with no cash charge ${money(st.value)}`);
  for (const p of payback) {
    out.push('', `Co-owner payback at ${p.toolId}${p.pooled ? ' (repaid: in the pool of shareables)' : ''}: paid ${money(p.paid).trim()} of ${money(p.cap).trim()}, remaining ${money(p.remaining).trim()}${p.estimatedSessionsToPool !== null ? `, about ${p.estimatedSessionsToPool} sessions to go` : ''}`);
    for (const c of p.coOwners) out.push(`  ${c.affiliateId.padEnd(16)} contributed ${money(c.contribution)}  cap ${money(c.cap)}  paid ${money(c.paid)}  remaining ${money(c.remaining)}`);
  }
  return out.join('\n') + '\n';
}
