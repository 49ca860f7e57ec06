/**
 * Which journal events are worth telling someone, and what to say: plain data in, notices out.
 * A notice names a role, not an address; the store turns it into one row per destination.
 *
 * An alert and its resolved message share an incident: the alert's key is unique to the event
 * that raised it, the resolution resolves whatever alert of that incident went out last.
 */
import { formatMinor } from '../../../ledger-client/src/money.js';
import type { Role } from './config.js';

export type Severity = 'info' | 'warning' | 'critical';

/** What a person reads, on every channel: a title, a sentence, and labelled figures. */
export interface Message {
  title: string;
  summary: string;
  facts: [label: string, value: string][];
  /** Whose receipt or warning (kept with the message for webhooks that route by person). */
  affiliateId?: string;
}

export interface Notice {
  /** Deduplication: one message per key and destination, whatever writes it twice. */
  key: string;
  /** An alert and its resolution share it. */
  incident: string | null;
  /** This notice tells that the incident's last alert is over (written only when there was one). */
  resolves: boolean;
  kind: string;
  severity: Severity;
  role: Role;
  /** For the affiliate role: whose. */
  affiliateId: string | null;
  message: Message;
}

export interface RuleContext {
  /** Tools with a tariff: their receipt is written with the charge, not with the session's end. */
  billedTools: ReadonlySet<string>;
  minorUnit: number;
}

interface EventIn {
  id: number;
  kind: string;
  deviceId: string | null;
  data: Record<string, unknown>;
}

/** 3725 s → "1 h 2 min"; 42 s → "42 s". */
export function duration(s: number): string {
  if (s < 60) return `${Math.round(s)} s`;
  const min = Math.round(s / 60);
  return min < 60 ? `${min} min` : `${Math.floor(min / 60)} h ${min % 60} min`;
}

const usageFacts = (u: { durationS?: unknown; filamentG?: unknown; energyWh?: unknown; startedAt?: unknown; endedAt?: unknown }): Message['facts'] => [
  ['Started', String(u.startedAt ?? '?')],
  ['Ended', String(u.endedAt ?? '?')],
  ['Time', duration(Number(u.durationS ?? 0))],
  ['Filament', `${Number(u.filamentG ?? 0).toFixed(1)} g`],
  ['Energy', `${Number(u.energyWh ?? 0).toFixed(1)} Wh`],
];

const REASON_TEXT: Record<string, string> = { 'idle-timeout': 'it has been idle', 'max-duration': 'the session reached its maximum duration' };

/** The notices an event calls for (none for most events). */
export function noticesFor(e: EventIn, ctx: RuleContext): Notice[] {
  const d = e.data;
  const tool = e.deviceId ?? '?';
  const notice = (n: Omit<Notice, 'incident' | 'resolves' | 'affiliateId'> & Partial<Pick<Notice, 'incident' | 'resolves' | 'affiliateId'>>): Notice[] => [
    { incident: null, resolves: false, affiliateId: null, ...n },
  ];
  // one receipt a session: with its charge where the tool is billed, else with its end
  const receipt = (message: Message) => notice({ key: `receipt:${String(d.sessionId)}`, kind: 'receipt', severity: 'info', role: 'affiliate', affiliateId: String(d.affiliateId), message });
  switch (e.kind) {
    case 'session.ended':
      if (ctx.billedTools.has(tool)) return [];
      return receipt({ title: `Your session at ${tool}`, summary: `Your session at ${tool} ended (${String(d.reason ?? 'ended')}); this tool is not charged.`, facts: usageFacts(d) });
    case 'billing.charge': {
      const inputs = d.inputs as { usage: Record<string, unknown> };
      const price = d.price as { total: number; cash: boolean };
      const parts = d.parts as { account: string; affiliateId?: string; amount: number }[];
      const money = (minor: number) => `${formatMinor(minor, ctx.minorUnit)} ${String(d.currency)}`;
      const split: Message['facts'] = parts.map((p) => [`  to ${p.account}${p.affiliateId ? ` (${p.affiliateId})` : ''}`, money(p.amount)]);
      return receipt({
        title: `Receipt: ${tool}, ${money(price.total)}`,
        summary: price.cash ? `Your session at ${tool} cost ${money(price.total)} (${String(d.useType)} use).` : `Your session at ${tool} was worth ${money(price.total)} (${String(d.useType)} use, nothing owed).`,
        facts: [...usageFacts({ ...inputs.usage, startedAt: d.startedAt, endedAt: d.endedAt }), [price.cash ? 'Cost' : 'Value', money(price.total)], ...split],
      });
    }
    case 'session.end-deferred': {
      // an end the affiliate asked for (badge-out while the tool is busy) needs no warning
      const why = REASON_TEXT[String(d.reason)];
      if (typeof d.affiliateId !== 'string' || !why) return [];
      const when = d.busy ? 'as soon as it is no longer busy' : `in ${duration(Number(d.offInS ?? 0))}`;
      return notice({
        key: `switch-off:${String(d.sessionId)}:${e.id}`,
        kind: 'switch-off-warning',
        severity: 'warning',
        role: 'affiliate',
        affiliateId: d.affiliateId,
        message: { title: `${tool} switches off ${when}`, summary: `${tool} will be switched off ${when}: ${why}. Use it or badge again to keep your session.`, facts: [['Tool', tool], ['Reason', String(d.reason)]] },
      });
    }
    case 'device.fault': {
      const code = String(d.code ?? d.kind ?? 'fault');
      const incident = `fault:${tool}:${code}`;
      return notice({
        key: `${incident}:${e.id}`,
        incident,
        kind: 'fault',
        severity: d.severity === 'warning' ? 'warning' : 'critical',
        role: 'maintainer',
        message: { title: `${tool}: ${code}`, summary: `${tool} reports a fault: ${String(d.text ?? code)}`, facts: [['Device', tool], ['Fault', code], ['Firmware says', String(d.text ?? '')]] },
      });
    }
    case 'device.fault-cleared': {
      const code = String(d.code ?? d.kind ?? 'fault');
      return notice({
        key: '',
        incident: `fault:${tool}:${code}`,
        resolves: true,
        kind: 'fault-resolved',
        severity: 'info',
        role: 'maintainer',
        message: { title: `Resolved: ${tool}: ${code}`, summary: `The fault at ${tool} is cleared: ${String(d.text ?? code)}`, facts: [['Device', tool], ['Fault', code]] },
      });
    }
    case 'billing.period-closed':
      return notice({
        key: `month-closed:${String(d.period)}`,
        kind: 'month-closed',
        severity: 'info',
        role: 'custodian',
        message: { title: `Month ${String(d.period)} closed`, summary: `${String(d.by)} closed ${String(d.period)}: its statement is final (ovn-gateway billing statement --period ${String(d.period)}).`, facts: [['Period', String(d.period)], ['Closed by', String(d.by)]] },
      });
    default:
      return [];
  }
}

/** A device offline longer than the configured minutes (a timer's, not an event's), or back online. */
export function offlineNotice(deviceId: string, since: string, lostEventId: number, back: boolean): Notice {
  const incident = `offline:${deviceId}`;
  return back
    ? { key: '', incident, resolves: true, kind: 'offline-resolved', severity: 'info', role: 'maintainer', affiliateId: null, message: { title: `Resolved: ${deviceId} is back online`, summary: `${deviceId} is back online (offline since ${since}).`, facts: [['Device', deviceId], ['Offline since', since]] } }
    : { key: `${incident}:${lostEventId}`, incident, resolves: false, kind: 'offline', severity: 'warning', role: 'maintainer', affiliateId: null, message: { title: `${deviceId} is offline`, summary: `${deviceId} has been offline since ${since}.`, facts: [['Device', deviceId], ['Offline since', since]] } };
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The plain-text body: the summary, then one fact a line. */
export function messageText(m: Message): string {
  return [m.summary, '', ...m.facts.map(([k, v]) => `${k}: ${v}`)].join('\n');
}

/** The HTML body: the same, with the facts as a table. */
export function messageHtml(m: Message): string {
  const rows = m.facts.map(([k, v]) => `<tr><th align="left">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('');
  return `<p>${escapeHtml(m.summary)}</p><table>${rows}</table>`;
}
