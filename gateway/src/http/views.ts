/**
 * What the API shows of tools and sessions, shared by the routes and the event stream: a
 * tool with its devices' state, and a running session with its cost as if it ended now.
 */
import { z } from 'zod';
import type { Billing } from '../billing/billing.js';
import { formatMinor } from '../../../ledger-client/src/money.js';
import type { ToolSessions } from '../sessions/tool-sessions.js';
import type { SessionUsage } from '../sessions/usage.js';
import { isToolSwitch } from '../devices/tool-io.js';
import type { Journal } from '../journal/journal.js';
import type { AppContext } from './context.js';

const amount = z.string().describe('Decimal string in major units ("1.23").');
export const costSchema = z
  .object({
    total: amount,
    currency: z.string(),
    cash: z.boolean().describe('false: the use is valued (project use) and nothing is owed.'),
    parts: z.object({ material: amount, maintenance: amount, infrastructure: amount, payback: amount, technician: amount }),
  })
  .describe('What the session costs if it ended now (its charge when ended), from the tariff; null when the tool is not billed.');

export const liveSessionSchema = z.object({
  sessionId: z.string(),
  toolId: z.string(),
  affiliateId: z.string(),
  useType: z.string(),
  startedAt: z.string(),
  elapsedS: z.number(),
  activeS: z.number(),
  energyWh: z.number(),
  filamentG: z.number(),
  material: z
    .object({
      source: z.enum(['file', 'printer-counter', 'position-estimate']),
      uncertaintyMm: z.number().nullable().describe('± mm; null: unknown.'),
      uncertaintyG: z.number().nullable().optional().describe("The same in grams of the printer's filament."),
      flagged: z.string().nullable().describe('Why a custodian should confirm or correct the figure; null: nothing to check.'),
    })
    .nullable()
    .describe("Where the filament figure comes from: the G-code file (exact), the printer's counter, or an estimate from extruder positions (flagged); null: no print job."),
  cost: costSchema.nullable(),
});
export type LiveSession = z.output<typeof liveSessionSchema>;
export type Cost = z.output<typeof costSchema>;

/** What an affiliate sees of someone else's session. */
export const otherSessionSchema = z.object({ sessionId: z.string(), toolId: z.string(), startedAt: z.string() });

export const toolViewSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  status: z.enum(['available', 'blocked', 'maintenance']),
  statusReason: z.string().nullable(),
  statusBy: z.string().nullable(),
  statusSince: z.string().nullable(),
  online: z.boolean().describe("The tool's switch (node or GPIO) answers."),
  relayOn: z.boolean().nullable().describe('The relay as sensed, else as commanded; null before the switch reported it.'),
  busy: z.boolean().describe('The tool is working (printing, heating, busy input).'),
  inUse: z.boolean().describe('A session is open.'),
  session: z.union([liveSessionSchema.loose(), otherSessionSchema]).nullable().describe('The open session with what it used so far and the affiliate\'s name (an affiliate sees only the start of someone else’s).'),
  useTypes: z.array(z.string()).describe("The use types this tool's tariffs price."),
});

/** A cost from its total and what each account gets (minor units), in the lab's currency. */
function costFrom(billing: Billing, total: number, cash: boolean, amountOf: (account: string) => number): Cost {
  const f = (account: string) => formatMinor(amountOf(account), billing.cfg.minorUnit);
  return {
    total: formatMinor(total, billing.cfg.minorUnit),
    currency: billing.cfg.currency,
    cash,
    parts: { material: f('material'), maintenance: f('maintenance'), infrastructure: f('infrastructure'), payback: f('co-owner'), technician: f('technician') },
  };
}

/** The cost of a session as if it ended now. */
export function costOf(billing: Billing | null, u: SessionUsage): Cost | null {
  const charge = billing?.quote(u);
  if (!billing || !charge) return null;
  return costFrom(billing, charge.price.total, charge.price.cash, (account) => charge.parts.filter((p) => p.account === account).reduce((a, p) => a + p.amount, 0));
}

/** A closed session's charge with every correction, as a cost; null when it was not charged. */
export function chargeCost(journal: Journal, billing: Billing | null, sessionId: string): Cost | null {
  if (!billing) return null;
  const rows = journal
    .prepared('SELECT p.account, SUM(p.amount) AS amount, MIN(c.cash) AS cash FROM charges c LEFT JOIN charge_parts p ON p.event_id = c.event_id WHERE c.session_id = ? GROUP BY p.account')
    .all(sessionId) as { account: string | null; amount: number | null; cash: number }[];
  if (rows.length === 0) return null;
  const total = rows.reduce((a, r) => a + (r.amount ?? 0), 0);
  return costFrom(billing, total, rows.every((r) => r.cash === 1), (account) => rows.filter((r) => r.account === account).reduce((a, r) => a + (r.amount ?? 0), 0));
}

export function liveSession(billing: Billing | null, u: SessionUsage): LiveSession {
  return {
    sessionId: u.sessionId,
    toolId: u.toolId,
    affiliateId: u.affiliateId,
    useType: u.useType,
    startedAt: u.startedAt,
    elapsedS: u.durationS,
    activeS: u.activeS,
    energyWh: u.energyWh,
    filamentG: u.filamentG,
    material: u.material ?? null,
    cost: costOf(billing, u),
  };
}

/** A tool as the API shows it; `viewer`: an affiliate sees only the start of someone else's session. */
/** What a tool is doing, without its session: its status, whether it is reachable, switched on, busy, in use. */
export function toolState(ctx: AppContext, t: ToolSessions) {
  const { status, reason, by, since, inUse } = t.status();
  const c = t.cfg;
  const sw = ctx.devices.get(c.switch ?? c.node ?? '');
  const relay = sw && isToolSwitch(sw) && sw.relayKnown ? sw.relayState : null;
  const meters = [c.meter ?? c.node, c.printer].map((id) => (id ? ctx.devices.get(id)?.health() : undefined));
  return {
    status,
    statusReason: reason,
    statusBy: by,
    statusSince: since,
    online: sw?.health().state === 'online',
    relayOn: relay ? (relay.sensed ?? relay.requested) : null,
    busy: meters.some((h) => h?.detail.busy === true),
    inUse,
  };
}

export function toolView(ctx: AppContext, t: ToolSessions, viewer: string | null) {
  const c = t.cfg;
  const u = t.current();
  return {
    id: c.id,
    name: c.name ?? c.id,
    ...toolState(ctx, t),
    devices: { node: c.node ?? null, meter: c.meter ?? c.node ?? null, switch: c.switch ?? c.node ?? null, printer: c.printer ?? null, readers: c.readers },
    serviceEveryH: c.serviceEveryH ?? null,
    session: u === null ? null : viewer !== null && u.affiliateId !== viewer ? { sessionId: u.sessionId, toolId: u.toolId, startedAt: u.startedAt } : { ...u, ...liveSession(ctx.billing, u), affiliateName: ctx.access.get(u.affiliateId)?.name ?? null },
    useTypes: Object.keys(ctx.billing?.cfg.tools[c.id]?.tariffs ?? {}),
    badges: t.stats,
  };
}
