/**
 * What the simulated ledger accepts, pure. The JSON batch API: the shape of each record (zod,
 * refusing unknown fields), then what Valueflows requires beyond the shape. GraphQL: the schema
 * checks the shape; beyond it, the Valueflows actions and, in hREA mode, hREA's own rules. A
 * refusal names the field.
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
      resourceConformsTo: ref.optional(),
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

// ---- GraphQL: Valueflows actions and hREA's rules ----

interface VfAction {
  id: string;
  label: string;
  resourceEffect: string;
  onhandEffect: string;
  inputOutput: 'input' | 'output' | 'notApplicable';
  pairsWith: string;
}

/** The core Valueflows actions, with their effects, as hREA builds them in (lib/vf_actions/src/builtins.rs). */
export const VF_ACTIONS: ReadonlyMap<string, VfAction> = new Map(
  (
    [
      ['dropoff', 'increment', 'increment', 'output', 'pickup'],
      ['pickup', 'decrement', 'decrement', 'input', 'dropoff'],
      ['consume', 'decrement', 'decrement', 'input', 'notApplicable'],
      ['use', 'noEffect', 'noEffect', 'input', 'notApplicable'],
      ['work', 'noEffect', 'noEffect', 'input', 'notApplicable'],
      ['cite', 'noEffect', 'noEffect', 'input', 'notApplicable'],
      ['produce', 'increment', 'increment', 'output', 'notApplicable'],
      ['accept', 'noEffect', 'decrement', 'input', 'modify'],
      ['modify', 'noEffect', 'increment', 'output', 'accept'],
      ['pass', 'noEffect', 'noEffect', 'output', 'accept'],
      ['fail', 'noEffect', 'noEffect', 'output', 'accept'],
      ['deliver-service', 'noEffect', 'noEffect', 'output', 'notApplicable'],
      ['transfer-all-rights', 'decrementIncrement', 'noEffect', 'notApplicable', 'notApplicable'],
      ['transfer-custody', 'noEffect', 'decrementIncrement', 'notApplicable', 'notApplicable'],
      ['transfer', 'decrementIncrement', 'decrementIncrement', 'notApplicable', 'notApplicable'],
      ['move', 'decrementIncrement', 'decrementIncrement', 'notApplicable', 'notApplicable'],
      ['raise', 'increment', 'increment', 'notApplicable', 'notApplicable'],
      ['lower', 'decrement', 'decrement', 'notApplicable', 'notApplicable'],
    ] as const
  ).map(([id, resourceEffect, onhandEffect, inputOutput, pairsWith]) => [id, { id, label: id, resourceEffect, onhandEffect, inputOutput, pairsWith }]),
);

/** An action by the id a server takes: hREA reads `deliver_service` as `deliver-service`. */
export const actionOf = (id: string, hrea: boolean): VfAction | undefined => VF_ACTIONS.get(hrea ? id.replaceAll('_', '-') : id);

/**
 * What hREA's zomes check of an EconomicEvent or a Commitment before storing it, in their words
 * (rea_economic_event and rea_commitment storage: `validate_or_fields`; vf_actions:
 * `validate_flow_action`): a resource reference, a quantity, a time, and processes as the action
 * wants them. Null when it passes.
 */
export function hreaProblemOf(typename: 'EconomicEvent' | 'Commitment', r: Record<string, unknown>): string | null {
  const event = typename === 'EconomicEvent';
  if (!(r.resourceInventoriedAs || r.resourceClassifiedAs || r.resourceConformsTo)) return `${typename} must reference an inventoried resource, resource specification or resource classification`;
  // "Commmitment" as hREA spells it.
  if (!(r.resourceQuantity || r.effortQuantity)) return `${event ? 'EconomicEvent' : 'Commmitment'} must include either a resource quantity or an effort quantity`;
  if (!(r.hasBeginning || r.hasEnd || r.hasPointInTime || (!event && r.due))) return event ? 'EconomicEvent must have a beginning, end or exact time' : 'Commmitment must have a beginning, end, exact time or due date';
  const action = actionOf(String(r.action), true);
  if (!action) return 'Unknown action';
  if (action.inputOutput === 'notApplicable' && (r.inputOf || r.outputOf)) return `EconomicEvent of '${action.id}' action cannot link to processes`;
  if (action.inputOutput === 'input' && !r.inputOf) return `EconomicEvent input process required for '${action.id}' action`;
  if (action.inputOutput === 'output' && !r.outputOf) return `EconomicEvent output process required for '${action.id}' action`;
  return null;
}
