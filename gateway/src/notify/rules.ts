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
  /** Tell an affiliate when their badge is refused, with the reason (notifications.refusedBadges). */
  refusedBadges?: boolean;
  /** The tool each printer belongs to (a job's affiliate is the one of that tool's session). */
  printerTools?: ReadonlyMap<string, string>;
  /** Whose session a printer's job ran in (by the printer's id and the job's end event), or null. */
  jobOwner?: (printerId: string, eventId: number) => string | null;
}

/** What a refused badge's reason means, for the person refused. */
const DENY_TEXT: Record<string, string> = {
  suspended: 'your access is suspended; ask the lab',
  'not-qualified': 'you are not qualified on this tool yet',
  'qualification-expired': 'your qualification on this tool has expired',
  'tool-blocked': 'the tool is blocked',
  'tool-in-maintenance': 'the tool is in maintenance',
  'in-use-by-other': 'someone else is using it',
  'storage-unavailable': "the gateway cannot record a session now (its storage); the maintainers are told",
};

/** The kinds sent to affiliates, which each may turn off (none is critical). */
export const OPTIONAL_KINDS = ['receipt', 'switch-off-warning', 'job-waiting', 'quote-waiting', 'job-finished', 'job-failed', 'refused-badge'] as const;

interface EventIn {
  id: number;
  at: string;
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

/** The journal's kinds of event that noticesFor may tell someone of (the cursor skips the rest without reading their data). */
export const TOLD_EVENTS = ['session.ended', 'billing.charge', 'session.end-deferred', 'device.fault', 'device.fault-cleared', 'billing.period-closed', 'meter.implausible', 'storage.problem', 'storage.recovered', 'billing.correction', 'access.decision', 'printer.job-ended', 'print-job.queued', 'billing.payment'];

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
    case 'meter.implausible':
      // the driver journals these at a limited rate; each is one message, with how many it did not journal
      return notice({
        key: `implausible:${tool}:${e.id}`,
        kind: 'implausible-reading',
        severity: 'warning',
        role: 'maintainer',
        message: {
          title: `${tool}: implausible meter reading`,
          summary: `${tool} sent a meter reading that cannot be physically right; it was set aside and not billed: ${String(d.text ?? '')}`,
          facts: [['Device', tool], ['Counters', ((d.implausible as { counter?: string }[] | undefined) ?? []).map((i) => String(i.counter)).join(', ')], ['Not journaled since the last', String(d.notJournaled ?? 0)]],
        },
      });
    case 'storage.problem':
      return notice({
        key: `storage:${e.id}`,
        incident: 'storage',
        kind: 'storage',
        severity: 'critical',
        role: 'maintainer',
        message: { title: `Journal storage: ${String(d.state)}`, summary: `The journal's storage cannot record new sessions (${String(d.state)}); badges are refused until it can.${d.detail ? ` ${String(d.detail)}` : ''}`, facts: [['State', String(d.state)], ['Free', d.freeBytes == null ? '?' : `${Math.round(Number(d.freeBytes) / 1e6)} MB`], ['Floor', `${Math.round(Number(d.floorBytes ?? 0) / 1e6)} MB`]] },
      });
    case 'storage.recovered':
      return notice({
        key: '',
        incident: 'storage',
        resolves: true,
        kind: 'storage-resolved',
        severity: 'info',
        role: 'maintainer',
        message: { title: 'Resolved: journal storage usable again', summary: `The journal's storage records again (it was ${String(d.previous)}); new sessions are allowed.`, facts: [['Was', String(d.previous)]] },
      });
    case 'billing.correction': {
      const change = (d.change ?? {}) as Record<string, unknown>;
      const delta = (d.delta ?? []) as { amount?: number }[];
      const moved = delta.reduce((a, p) => a + Math.abs(Number(p.amount ?? 0)), 0) / 2;
      return notice({
        key: `correction:${e.id}`,
        kind: 'correction',
        severity: 'info',
        role: 'custodian',
        message: {
          title: `Correction: session ${String(d.sessionId)} at ${tool}`,
          summary: `${String(d.by)} corrected the charge of ${String(d.affiliateId)}'s session at ${tool} (${String(change.kind ?? '?')}): ${String(d.reason ?? '')}`,
          facts: [['Session', String(d.sessionId)], ['Affiliate', String(d.affiliateId)], ['Change', JSON.stringify(change)], ['Lands in', String(d.period)], ['Moved', formatMinor(Math.round(moved), ctx.minorUnit)], ['By', String(d.by)]],
        },
      });
    }
    case 'access.decision': {
      if (!ctx.refusedBadges || d.kind !== 'deny' || typeof d.affiliateId !== 'string') return [];
      const reason = String(d.reason);
      return notice({
        key: `refused:${e.id}`,
        kind: 'refused-badge',
        severity: 'info',
        role: 'affiliate',
        affiliateId: d.affiliateId,
        message: { title: `${tool} refused your badge`, summary: `${tool} did not start for you: ${DENY_TEXT[reason] ?? reason}.`, facts: [['Tool', tool], ['Reason', reason], ['When', e.at]] },
      });
    }
    case 'printer.job-ended': {
      const affiliateId = ctx.jobOwner?.(tool, e.id) ?? null;
      if (!affiliateId) return [];
      const outcome = String(d.outcome);
      const ok = outcome === 'finished';
      return notice({
        key: `job:${tool}:${String(d.jobId)}`,
        kind: ok ? 'job-finished' : 'job-failed',
        severity: ok ? 'info' : 'warning',
        role: 'affiliate',
        affiliateId,
        message: {
          title: ok ? `${tool}: ${String(d.file)} is done` : `${tool}: ${String(d.file)} ${outcome}`,
          summary: ok ? `Your print ${String(d.file)} at ${tool} finished.` : `Your print ${String(d.file)} at ${tool} ${outcome}: ${String(d.reason ?? '')}`,
          facts: [['Printer', tool], ['File', String(d.file)], ['Outcome', outcome], ['Time', duration(Number(d.durationS ?? 0))], ['Filament', `${Number(d.filamentG ?? 0).toFixed(1)} g`]],
        },
      });
    }
    case 'print-job.queued': {
      // a job sent from a slicer waits for its owner's badge, or first for their confirmation of its quote
      if (d.staff === true || typeof d.owner !== 'string') return [];
      const q = (d.quote ?? {}) as { filamentG?: number; durationS?: number | null; total?: string | null; confirmNeeded?: boolean };
      const file = String(d.file);
      const confirm = q.confirmNeeded === true;
      return notice({
        key: `job-waiting:${String(d.jobId)}`,
        kind: confirm ? 'quote-waiting' : 'job-waiting',
        severity: 'info',
        role: 'affiliate',
        affiliateId: d.owner,
        message: {
          title: confirm ? `${tool}: confirm the quote for ${file}` : `${tool}: ${file} waits for your badge`,
          summary: confirm
            ? `Your print ${file} is quoted ${q.total ?? '?'}, above what ${tool} starts without your word: confirm it on the dashboard, then badge in at ${tool} to start it.`
            : `Your print ${file} is queued at ${tool}: badge in there to start it.`,
          facts: [['Printer', tool], ['File', file], ['Quote', q.total ?? 'not charged'], ['Filament', `${Number(q.filamentG ?? 0).toFixed(1)} g`], ...(q.durationS ? [['Estimated time', duration(q.durationS)] as [string, string]] : []), ['Waits until', String(d.expiresAt)]],
        },
      });
    }
    case 'billing.payment': {
      const amount = `${formatMinor(Number(d.amount), ctx.minorUnit)} ${String(d.currency)}`;
      return notice({
        key: `payment:${e.id}`,
        kind: 'payment',
        severity: 'info',
        role: 'custodian',
        message: {
          title: `Payment from ${String(d.affiliateId)}: ${amount}`,
          summary: `${String(d.by)} recorded a payment of ${amount} from ${String(d.affiliateId)} (${String(d.method)}, ${String(d.reference)}).`,
          facts: [['Affiliate', String(d.affiliateId)], ['Amount', amount], ['Paid on', String(d.paidOn)], ['Method', String(d.method)], ['Reference', String(d.reference)], ['Recorded by', String(d.by)]],
        },
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

/** A state the gateway looks at now and then (not an event): while `active`, its incident is open. */
export interface Condition {
  incident: string;
  active: boolean;
  /** The alert (its key is made unique when it is written) and the resolution. */
  alert: Omit<Notice, 'key' | 'incident' | 'resolves'>;
  resolution: Omit<Notice, 'key' | 'incident' | 'resolves'>;
}

/** A tool's run hours against its service interval; overdue past `overdueFactor` × the interval. */
export function maintenanceConditions(m: { toolId: string; runHours: number; serviceEveryH: number }, overdueFactor: number): Condition[] {
  const { toolId, runHours, serviceEveryH } = m;
  const facts: Message['facts'] = [['Tool', toolId], ['Run hours', runHours.toFixed(1)], ['Service every', `${serviceEveryH} h`]];
  const resolution = (what: string): Condition['resolution'] => ({ kind: 'maintenance-resolved', severity: 'info', role: 'maintainer', affiliateId: null, message: { title: `Resolved: ${toolId} ${what}`, summary: `${toolId} was serviced: its run hours count from zero again.`, facts } });
  return [
    {
      incident: `maintenance-due:${toolId}`,
      active: runHours >= serviceEveryH,
      alert: { kind: 'maintenance-due', severity: 'warning', role: 'maintainer', affiliateId: null, message: { title: `${toolId}: service due`, summary: `${toolId} has run ${runHours.toFixed(1)} h since its last service; it is due every ${serviceEveryH} h (log the service on the maintenance page).`, facts } },
      resolution: resolution('service due'),
    },
    {
      incident: `maintenance-overdue:${toolId}`,
      active: runHours >= serviceEveryH * overdueFactor,
      alert: { kind: 'maintenance-overdue', severity: 'critical', role: 'maintainer', affiliateId: null, message: { title: `${toolId}: service overdue`, summary: `${toolId} has run ${runHours.toFixed(1)} h since its last service, past ${(serviceEveryH * overdueFactor).toFixed(1)} h (due every ${serviceEveryH} h).`, facts } },
      resolution: resolution('service overdue'),
    },
  ];
}

/** The wall clock not synchronised (NTP) for longer than the configured minutes. */
export function clockCondition(active: boolean, since: string | null): Condition {
  const facts: Message['facts'] = [['Not synchronised since', since ?? '?']];
  return {
    incident: 'clock',
    active,
    alert: { kind: 'clock', severity: 'warning', role: 'maintainer', affiliateId: null, message: { title: 'Clock not synchronised', summary: `The gateway's wall clock has not been synchronised (NTP) since ${since ?? '?'}: times in receipts and statements may be off (durations are not).`, facts } },
    resolution: { kind: 'clock-resolved', severity: 'info', role: 'maintainer', affiliateId: null, message: { title: 'Resolved: clock synchronised', summary: "The gateway's wall clock is synchronised again.", facts } },
  };
}

/** The ledger outbox: its backlog alarm, and its dead letters. */
export function ledgerConditions(l: { alarm: string | null; deadLetters: number }): Condition[] {
  return [
    {
      incident: 'ledger-backlog',
      active: l.alarm !== null,
      alert: { kind: 'ledger-backlog', severity: 'warning', role: 'maintainer', affiliateId: null, message: { title: 'Ledger backlog', summary: `Records wait for the ledger: ${l.alarm ?? ''}.`, facts: [['Alarm', l.alarm ?? '']] } },
      resolution: { kind: 'ledger-backlog-resolved', severity: 'info', role: 'maintainer', affiliateId: null, message: { title: 'Resolved: ledger backlog', summary: 'The ledger backlog is back under its alarm.', facts: [] } },
    },
    {
      incident: 'ledger-dead-letters',
      active: l.deadLetters > 0,
      alert: { kind: 'ledger-dead-letters', severity: 'critical', role: 'maintainer', affiliateId: null, message: { title: `Ledger: ${l.deadLetters} dead letters`, summary: `${l.deadLetters} records were refused by the ledger for good; see ovn-gateway ledger dead-letters, fix the cause and retry them.`, facts: [['Dead letters', String(l.deadLetters)]] } },
      resolution: { kind: 'ledger-dead-letters-resolved', severity: 'info', role: 'maintainer', affiliateId: null, message: { title: 'Resolved: no ledger dead letters', summary: 'No record waits as a dead letter for the ledger any more.', facts: [] } },
    },
  ];
}

/** A month that has ended and is not closed yet: told once. */
export function monthReadyNotice(period: string): Notice {
  return {
    key: `month-ready:${period}`,
    incident: null,
    resolves: false,
    kind: 'month-ready',
    severity: 'info',
    role: 'custodian',
    affiliateId: null,
    message: { title: `Month ${period} ready to close`, summary: `${period} has ended: check its statement and corrections, then close it (ovn-gateway billing close --period ${period}, or the billing page).`, facts: [['Period', period]] },
  };
}
