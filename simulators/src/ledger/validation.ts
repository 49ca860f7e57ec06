/**
 * What the simulated ledger accepts, pure: the shape of each record (zod, refusing unknown
 * fields), then what Valueflows (and hREA) require beyond the shape. A refusal names the field.
 */
import { z } from 'zod';

export const iso = z.iso.datetime({ offset: true, message: 'expected an ISO 8601 date-time with an offset, e.g. 2026-11-24T15:00:00Z' });
const UNIT = /^(om2:(hour|minute|second|gram|kilogram|kilowattHour|one)|iso4217:[A-Z]{3})$/;
const unit = z.string().regex(UNIT, 'expected an OM2 unit (om2:hour, om2:minute, om2:gram, om2:kilowattHour, om2:one …) or iso4217:<currency code>');
const measure = z.strictObject({ hasNumericalValue: z.number({ message: 'expected a number' }), hasUnit: unit });
const ref = z.string().min(1, 'must not be empty').max(200);
const common = {
  id: ref,
  created: iso,
  note: z.string().max(4000).optional(),
  // Gateway-side fields the JSON batch carries along; not Valueflows, not compared.
  toolId: z.string().optional(),
  journalEventId: z.number().int().optional(),
};
const ACTIONS = ['use', 'consume', 'work', 'transfer', 'produce', 'cite', 'deliver-service', 'transfer-all-rights', 'transfer-custody', 'move', 'raise', 'lower'] as const;

export const recordSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('process'), ...common, name: z.string().min(1, 'must not be empty'), hasBeginning: iso, hasEnd: iso }),
    z.strictObject({
      type: z.literal('economic-event'),
      ...common,
      action: z.enum(ACTIONS, { message: `expected a Valueflows action id (${ACTIONS.join(', ')})` }),
      provider: ref,
      receiver: ref,
      inputOf: ref.optional(),
      outputOf: ref.optional(),
      resourceInventoriedAs: ref.optional(),
      resourceConformsTo: ref.optional(),
      resourceQuantity: measure.optional(),
      effortQuantity: measure.optional(),
      hasBeginning: iso.optional(),
      hasEnd: iso.optional(),
      hasPointInTime: iso.optional(),
      triggeredBy: ref.optional(),
      corrects: ref.optional(),
    }),
    z.strictObject({
      type: z.literal('claim'),
      ...common,
      action: z.literal('transfer', { message: 'expected "transfer": a claim here is money owed' }),
      provider: ref,
      receiver: ref,
      resourceQuantity: measure,
      triggeredBy: ref,
      due: iso.optional(),
      corrects: ref.optional(),
    }),
  ],
  { message: 'expected type "process", "economic-event" or "claim"' },
);

export type Accepted = z.output<typeof recordSchema>;

const TIME_UNITS = new Set(['om2:hour', 'om2:minute', 'om2:second']);

/** What Valueflows (and hREA) require beyond the shape; the first problem, naming the field. */
export function problemOf(r: Accepted, typeOf: (id: string) => string | undefined): string | null {
  if (r.type === 'process') return Date.parse(r.hasEnd) < Date.parse(r.hasBeginning) ? 'hasEnd: before hasBeginning' : null;
  const negative = (m: { hasNumericalValue: number } | undefined) => m !== undefined && m.hasNumericalValue < 0 && !r.corrects;
  if (negative(r.resourceQuantity)) return 'resourceQuantity.hasNumericalValue: negative, which only a correction (corrects) may be';
  if (r.type === 'claim') {
    if (!r.resourceQuantity.hasUnit.startsWith('iso4217:')) return 'resourceQuantity.hasUnit: a claim here is money: expected iso4217:<currency code>';
    if (typeOf(r.triggeredBy) !== 'economic-event') return `triggeredBy: no economic event ${r.triggeredBy} here`;
    return null;
  }
  if (negative(r.effortQuantity)) return 'effortQuantity.hasNumericalValue: negative, which only a correction (corrects) may be';
  if ((r.action === 'use' || r.action === 'work') && !r.effortQuantity) return `effortQuantity: required for ${r.action}`;
  if (r.effortQuantity && !TIME_UNITS.has(r.effortQuantity.hasUnit)) return 'effortQuantity.hasUnit: expected a time (om2:hour, om2:minute, om2:second)';
  if (r.action === 'consume' && !r.resourceQuantity) return 'resourceQuantity: required for consume';
  if (!r.hasPointInTime && !r.hasBeginning) return 'hasPointInTime: an event needs hasPointInTime or hasBeginning';
  if ((r.action === 'use' || r.action === 'consume' || r.action === 'work') && !r.inputOf) return `inputOf: ${r.action} must be an input of a process`;
  if (r.inputOf && typeOf(r.inputOf) !== 'process') return `inputOf: no process ${r.inputOf} here`;
  if (r.triggeredBy && typeOf(r.triggeredBy) !== 'economic-event') return `triggeredBy: no economic event ${r.triggeredBy} here`;
  return null;
}

/** The first problem zod found, as `path.to.field: what`. */
export function issueText(error: z.ZodError): string {
  const i = error.issues[0]!;
  const path = i.code === 'unrecognized_keys' ? [...i.path, i.keys[0]!] : i.path;
  const what = i.code === 'unrecognized_keys' ? 'unknown field' : i.message;
  return `${path.length ? path.map(String).join('.') : '(record)'}: ${what}`;
}
