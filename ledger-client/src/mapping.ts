/**
 * Journal events as Valueflows records. Pure: one journal event in, its records out, the same
 * records (ids included) every time. ../README.md shows the mapping with a full example. Every
 * flow names the kind of resource it concerns (`resourceConformsTo`, ids.ts `spec`): the tool,
 * its material, technician work, the currency; hREA refuses an event that names none.
 *
 * - `session.ended` → a Process for the session; a `use` event of the tool (hours); a `consume`
 *   event per extruder that used material (grams); a `work` event for technician time (minutes).
 * - `billing.charge` → a Claim per non-zero cash part, from the affiliate to the fund or
 *   co-owner, triggered by the session's `use` event. A valued use (no cash) owes nothing: its
 *   value is noted on a `use` event that corrects the session's by zero hours.
 * - `billing.correction` → a Claim per changed part for the difference (negative to reduce),
 *   `corrects` naming the session's claim for that part; a change of value as above.
 * - `tool.pooled` → a `transfer` of the tool from its co-owners to the custodian.
 * Any other kind gives no records.
 */
import { z } from 'zod';
import { agent, eventRecordId, resource, sessionRecordId, spec } from './ids.js';
import { formatMinor, MAX_MINOR_UNIT } from './money.js';
import type { ClaimRecord, EconomicEventRecord, LedgerRecord, ProcessRecord } from './types.js';

/** A journal event as the outbox reads it (with its chain hash). */
export interface JournalEventInput {
  id: number;
  hash: string;
  at: string;
  kind: string;
  deviceId: string | null;
  data: Record<string, unknown>;
}

export interface MappingContext {
  gatewayId: string;
  /** The deployment's currency; a charge's own `currency` wins, since its amounts are in it. */
  currency: string;
  /** The currency's decimals; a charge's own `inputs.minorUnit` wins, for the same reason. */
  minorUnit: number;
}

/** A journal event whose data the mapping cannot read: a defect to show a person, never to skip. */
export class MappingError extends Error {
  override name = 'MappingError';
}

// ---- what the mapping reads of each event (the gateway writes more) ----

const amount = z.number().int().refine(Number.isSafeInteger, 'a whole number of minor units');
const part = z.object({ account: z.enum(['material', 'technician', 'maintenance', 'infrastructure', 'co-owner']), affiliateId: z.string().min(1).optional(), amount });
const price = z.object({ usage: amount, material: amount, technician: amount, total: amount, cash: z.boolean() });

const sessionEnded = z.object({
  sessionId: z.string().min(1),
  toolId: z.string().min(1).optional(),
  affiliateId: z.string().min(1),
  useType: z.string().min(1),
  startedAt: z.string().min(1),
  endedAt: z.string().min(1).nullable(),
  durationS: z.number().min(0),
  activeS: z.number().min(0).optional(),
  energyWh: z.number().optional(),
  filament: z.array(z.object({ extruder: z.number().int().min(0), g: z.number().min(0) })).default([]),
  technicianMin: z.number().min(0).default(0),
  technicians: z.array(z.string().min(1)).default([]),
  reason: z.string().optional(),
  stoppedBy: z.string().optional(),
  material: z.object({ source: z.enum(['file', 'printer-counter', 'position-estimate']), uncertaintyMm: z.number().nullable(), flagged: z.string().nullable() }).optional(),
});

/** Where a filament figure comes from, in words: for a consume event's note and the statement. */
export function materialNote(m: { source: 'file' | 'printer-counter' | 'position-estimate'; uncertaintyMm: number | null; flagged: string | null }): string {
  const from =
    m.source === 'file'
      ? `from the G-code file${m.uncertaintyMm ? ` (up to ${m.uncertaintyMm} mm more)` : ''}`
      : m.source === 'printer-counter'
        ? `from the printer's counter (± ${m.uncertaintyMm} mm)`
        : 'estimated from extruder positions';
  return m.flagged ? `${from}; to be checked: ${m.flagged}` : from;
}

const charge = z.object({
  sessionId: z.string().min(1),
  affiliateId: z.string().min(1),
  useType: z.string().min(1),
  currency: z.string().regex(/^[A-Z]{3}$/).optional(),
  inputs: z.object({ minorUnit: z.number().int().min(0).max(MAX_MINOR_UNIT) }).partial(),
  price,
  parts: z.array(part),
});

const correction = z.object({
  corrects: z.number().int(),
  sessionId: z.string().min(1),
  affiliateId: z.string().min(1),
  change: z.object({ kind: z.string() }).loose(),
  reason: z.string(),
  by: z.string(),
  after: z.object({ useType: z.string(), inputs: z.object({ minorUnit: z.number().int().min(0).max(MAX_MINOR_UNIT) }).partial().nullable(), price: price.nullable(), parts: z.array(part) }),
  delta: z.array(part),
  valueDelta: amount,
});

const pooled = z.object({
  sessionId: z.string().min(1),
  multiplier: z.string(),
  coOwners: z.array(z.object({ affiliateId: z.string().min(1), contribution: amount, cap: amount })),
});

function read<T extends z.ZodType>(schema: T, e: JournalEventInput): z.output<T> {
  const r = schema.safeParse(e.data);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new MappingError(`journal event ${e.id} (${e.kind}): data.${issue.path.map(String).join('.') || '(top level)'}: ${issue.message}`);
}

// ---- units and money ----

/**
 * Minor units as a Number of major units whose decimal text is exact: 1234 cents → 12.34.
 * Built from the decimal string, so the Number is the one nearest that decimal and JSON writes
 * it back as exactly that text; below 10^15 minor units every such decimal round-trips.
 */
export function majorUnits(minor: number, minorUnit: number): number {
  if (!Number.isSafeInteger(minor) || Math.abs(minor) >= 1e15) throw new MappingError(`amount ${minor} (minor units) cannot be written exactly as a decimal number`);
  return Number(formatMinor(minor, minorUnit));
}

const money = (minor: number, currency: string, minorUnit: number) => ({ hasNumericalValue: majorUnits(minor, minorUnit), hasUnit: `iso4217:${currency}` as const });
/** Hours to the microhour (3.6 ms): finer than the 0.1 s sessions are measured to, without float noise in the JSON. */
const hours = (seconds: number) => ({ hasNumericalValue: Math.round((seconds / 3600) * 1e6) / 1e6, hasUnit: 'om2:hour' as const });

type Part = z.output<typeof part>;
const partKey = (p: Part) => (p.account === 'co-owner' ? `co-owner:${p.affiliateId}` : p.account);

function receiverOf(p: Part, toolId: string, e: JournalEventInput): string {
  switch (p.account) {
    case 'co-owner':
      if (!p.affiliateId) throw new MappingError(`journal event ${e.id} (${e.kind}): a co-owner part without affiliateId`);
      return agent.affiliate(p.affiliateId);
    case 'maintenance':
      return agent.maintenanceFund(toolId);
    case 'infrastructure':
      return agent.infrastructureFund;
    case 'material':
      return agent.materialFund;
    case 'technician':
      return agent.technicianFund;
  }
}

const describePart = (p: Part) => (p.account === 'co-owner' ? `payback to co-owner ${p.affiliateId}` : `${p.account} fund`);

// ---- the mapping ----

export function recordsFor(event: JournalEventInput, ctx: MappingContext): LedgerRecord[] {
  switch (event.kind) {
    case 'session.ended':
      return sessionRecords(event, ctx);
    case 'billing.charge':
      return chargeRecords(event, ctx);
    case 'billing.correction':
      return correctionRecords(event, ctx);
    case 'tool.pooled':
      return poolRecords(event, ctx);
    default:
      return [];
  }
}

function toolOf(e: JournalEventInput, fromData?: string): string {
  const toolId = e.deviceId ?? fromData;
  if (!toolId) throw new MappingError(`journal event ${e.id} (${e.kind}) names no tool (deviceId)`);
  return toolId;
}

/** What every record of an event carries. */
const base = (e: JournalEventInput, toolId: string) => ({ created: e.at, toolId, journalEventId: e.id });

function sessionRecords(e: JournalEventInput, ctx: MappingContext): LedgerRecord[] {
  const s = read(sessionEnded, e);
  const toolId = toolOf(e, s.toolId);
  const id = (role: string) => sessionRecordId(ctx.gatewayId, s.sessionId, role);
  const processId = id('process');
  const user = agent.affiliate(s.affiliateId);
  const custodian = agent.custodian(ctx.gatewayId);
  const end = s.endedAt ?? e.at;
  const facts = [
    `session ${s.sessionId}`,
    `${s.useType} use`,
    s.reason && `ended: ${s.reason}${s.stoppedBy ? ` by ${s.stoppedBy}` : ''}`,
    s.activeS !== undefined && `active ${s.activeS} s`,
    s.energyWh !== undefined && `energy ${s.energyWh} Wh`,
  ].filter(Boolean);

  const process: ProcessRecord = { id: processId, type: 'process', ...base(e, toolId), name: `Use of ${toolId} by ${s.affiliateId}`, hasBeginning: s.startedAt, hasEnd: end, note: facts.join('; ') };
  const use: EconomicEventRecord = {
    id: id('use'),
    type: 'economic-event',
    ...base(e, toolId),
    action: 'use',
    provider: custodian,
    receiver: user,
    inputOf: processId,
    resourceInventoriedAs: resource.tool(toolId),
    resourceConformsTo: spec.tool(toolId),
    effortQuantity: hours(s.durationS),
    hasBeginning: s.startedAt,
    hasEnd: end,
  };
  const records: LedgerRecord[] = [process, use];
  for (const f of s.filament) {
    if (f.g <= 0) continue;
    records.push({
      id: id(`consume:${f.extruder}`),
      type: 'economic-event',
      ...base(e, toolId),
      action: 'consume',
      provider: custodian,
      receiver: user,
      inputOf: processId,
      resourceConformsTo: spec.material(toolId),
      resourceQuantity: { hasNumericalValue: f.g, hasUnit: 'om2:gram' },
      hasBeginning: s.startedAt,
      hasEnd: end,
      note: `filament, extruder ${f.extruder}${s.material ? `, ${materialNote(s.material)}` : ''}`,
    });
  }
  if (s.technicianMin > 0) {
    // The journal keeps the total of technician time, not each technician's share: with one
    // technician the time is theirs; with several (or none named) the technician fund stands in.
    const [only, ...others] = s.technicians;
    records.push({
      id: id('work'),
      type: 'economic-event',
      ...base(e, toolId),
      action: 'work',
      provider: only && others.length === 0 ? agent.affiliate(only) : agent.technicianFund,
      receiver: user,
      inputOf: processId,
      resourceConformsTo: spec.technicianWork,
      effortQuantity: { hasNumericalValue: s.technicianMin, hasUnit: 'om2:minute' },
      hasBeginning: s.startedAt,
      hasEnd: end,
      note: s.technicians.length ? `technician help by ${s.technicians.join(', ')}` : 'technician help',
    });
  }
  return records;
}

/** A note on the session's use, as a `use` event of zero hours that corrects it (nothing owed). */
function valueNote(e: JournalEventInput, ctx: MappingContext, toolId: string, sessionId: string, affiliateId: string, id: string, note: string): EconomicEventRecord {
  const sid = (role: string) => sessionRecordId(ctx.gatewayId, sessionId, role);
  return {
    id,
    type: 'economic-event',
    ...base(e, toolId),
    action: 'use',
    provider: agent.custodian(ctx.gatewayId),
    receiver: agent.affiliate(affiliateId),
    inputOf: sid('process'),
    resourceInventoriedAs: resource.tool(toolId),
    resourceConformsTo: spec.tool(toolId),
    effortQuantity: hours(0),
    hasPointInTime: e.at,
    corrects: sid('use'),
    note,
  };
}

function chargeRecords(e: JournalEventInput, ctx: MappingContext): LedgerRecord[] {
  const c = read(charge, e);
  const toolId = toolOf(e);
  const currency = c.currency ?? ctx.currency;
  const mu = c.inputs.minorUnit ?? ctx.minorUnit;
  const sid = (role: string) => sessionRecordId(ctx.gatewayId, c.sessionId, role);
  const fmt = (minor: number) => `${formatMinor(minor, mu)} ${currency}`;
  if (!c.price.cash) {
    if (c.price.total === 0) return [];
    const split = c.parts.filter((p) => p.amount !== 0).map((p) => `${describePart(p)} ${formatMinor(p.amount, mu)}`);
    return [valueNote(e, ctx, toolId, c.sessionId, c.affiliateId, sid('value'), `valued ${c.useType} use: ${fmt(c.price.total)}, not owed; split ${split.join(', ')}`)];
  }
  const items = `usage ${fmt(c.price.usage)}, material ${fmt(c.price.material)}, technician ${fmt(c.price.technician)}`;
  return c.parts
    .filter((p) => p.amount !== 0)
    .map((p) => claim(e, toolId, p, { id: sid(`claim:${partKey(p)}`), affiliateId: c.affiliateId, currency, mu, triggeredBy: sid('use'), note: `${describePart(p)}: ${c.useType} use of ${toolId}, session ${c.sessionId} (${items})` }));
}

/** A claim from the affiliate to the account of a part, for its amount. */
function claim(e: JournalEventInput, toolId: string, p: Part, c: { id: string; affiliateId: string; currency: string; mu: number; triggeredBy: string; note: string; corrects?: string }): ClaimRecord {
  return {
    id: c.id,
    type: 'claim',
    ...base(e, toolId),
    action: 'transfer',
    provider: agent.affiliate(c.affiliateId),
    receiver: receiverOf(p, toolId, e),
    resourceConformsTo: spec.currency(c.currency),
    resourceQuantity: money(p.amount, c.currency, c.mu),
    triggeredBy: c.triggeredBy,
    ...(c.corrects ? { corrects: c.corrects } : {}),
    note: c.note,
  };
}

function correctionRecords(e: JournalEventInput, ctx: MappingContext): LedgerRecord[] {
  const c = read(correction, e);
  const toolId = toolOf(e);
  const currency = ctx.currency;
  const mu = c.after.inputs?.minorUnit ?? ctx.minorUnit;
  const sid = (role: string) => sessionRecordId(ctx.gatewayId, c.sessionId, role);
  const eid = (role: string) => eventRecordId(ctx.gatewayId, e.id, e.hash, role);
  const why = `correction of the charge (journal event ${c.corrects}): ${describeChange(c.change)}; ${c.reason} (by ${c.by})`;
  // What the session owed on each part just before this correction: the parts after it, less
  // the difference. A part it owed something on has a claim from the charge to point at.
  const afterCash = c.after.price?.cash ? c.after.parts : [];
  const before = new Map<string, number>();
  for (const p of afterCash) before.set(partKey(p), (before.get(partKey(p)) ?? 0) + p.amount);
  for (const p of c.delta) before.set(partKey(p), (before.get(partKey(p)) ?? 0) - p.amount);

  const records: LedgerRecord[] = c.delta.filter((p) => p.amount !== 0).map((p) =>
    claim(e, toolId, p, {
      id: eid(`claim:${partKey(p)}`),
      affiliateId: c.affiliateId,
      currency,
      mu,
      triggeredBy: sid('use'),
      ...((before.get(partKey(p)) ?? 0) !== 0 ? { corrects: sid(`claim:${partKey(p)}`) } : {}),
      note: `${describePart(p)}: ${why}`,
    }),
  );
  if (c.valueDelta !== 0) {
    const value = c.after.price && !c.after.price.cash ? c.after.price.total : 0;
    records.push(valueNote(e, ctx, toolId, c.sessionId, c.affiliateId, eid('value'), `value of this use changed by ${formatMinor(c.valueDelta, mu)} to ${formatMinor(value, mu)} ${currency}, not owed; ${why}`));
  }
  return records;
}

function describeChange(change: { kind: string } & Record<string, unknown>): string {
  switch (change.kind) {
    case 'void':
      return 'voided';
    case 'use-type':
      return `use type set to ${String(change.useType)}`;
    case 'material':
      return `material set to ${String(change.filamentG)} g`;
    case 'technician':
      return `technician time set to ${String(change.technicianMin)} min`;
    default:
      return change.kind;
  }
}

function poolRecords(e: JournalEventInput, ctx: MappingContext): LedgerRecord[] {
  const p = read(pooled, e);
  const toolId = toolOf(e);
  const who = p.coOwners.map((c) => `${c.affiliateId} (contributed ${formatMinor(c.contribution, ctx.minorUnit)}, repaid ${formatMinor(c.cap, ctx.minorUnit)})`);
  const transfer: EconomicEventRecord = {
    id: eventRecordId(ctx.gatewayId, e.id, e.hash, 'pool'),
    type: 'economic-event',
    ...base(e, toolId),
    action: 'transfer',
    provider: agent.coOwners(toolId),
    receiver: agent.custodian(ctx.gatewayId),
    resourceInventoriedAs: resource.tool(toolId),
    resourceConformsTo: spec.tool(toolId),
    resourceQuantity: { hasNumericalValue: 1, hasUnit: 'om2:one' },
    hasPointInTime: e.at,
    note: `pool of shareables: session ${p.sessionId} repaid the last co-owner; every co-owner received ${p.multiplier} × their contribution (${ctx.currency}): ${who.join(', ')}`,
  };
  return [transfer];
}
