/**
 * Valueflows GraphQL servers differ in what their schema has: one row per flavour, each pinned to
 * the published schema(s) its documents are checked against (../schemas/README.md). What differs
 * lives here and nowhere else; the documents (vf-documents.ts) read it.
 */
import type { SchemaName } from './schemas.js';
import type { EventAction } from './types.js';

export const FLAVOUR_NAMES = ['vf-graphql', 'vf-graphql-0.8', 'hrea', 'bonfire'] as const;
export type Flavour = (typeof FLAVOUR_NAMES)[number];

export interface FlavourTraits {
  /** The published schemas every document of this flavour validates against. */
  schemas: readonly SchemaName[];
  /** Action ids as this server spells them. */
  actions: Record<EventAction, string>;
  /**
   * Money owed: a Claim where it names provider and receiver (vf-graphql 0.9); a Commitment (a
   * promised transfer) where there is no Claim (hREA) or it names neither (0.8).
   */
  owed: 'claim' | 'commitment';
  /** Root lists: Relay connections (`first`, `after`; `edges`, `pageInfo`) or arrays read from `start` (an id) for `limit`. */
  lists: 'connection' | 'start-limit';
  /** Quantities are `Decimal`, written as decimal text (0.9), or `Float` (0.8). */
  decimal: boolean;
  /** The field of a Process that lists the events it took in. */
  processInputs: 'observedInputs' | 'inputs';
}

/**
 * The four actions the mapping uses are spelled alike everywhere; the multi-word ones differ
 * (hREA and Bonfire say `deliver-service`, hREA also takes `deliver_service`), which is why the
 * ids live here and not in the mapping.
 */
const ACTIONS: Record<EventAction, string> = { use: 'use', consume: 'consume', work: 'work', transfer: 'transfer' };

const V09 = { schemas: ['vf-graphql/0.9.0-alpha.10'], actions: ACTIONS, owed: 'claim', lists: 'connection', decimal: true, processInputs: 'observedInputs' } as const satisfies FlavourTraits;

export const FLAVOURS: Record<Flavour, FlavourTraits> = {
  'vf-graphql': V09,
  'vf-graphql-0.8': { schemas: ['vf-graphql/0.8.5'], actions: ACTIONS, owed: 'commitment', lists: 'start-limit', decimal: false, processInputs: 'inputs' },
  hrea: { schemas: ['hrea/0.0.1-alpha.22'], actions: ACTIONS, owed: 'commitment', lists: 'connection', decimal: true, processInputs: 'observedInputs' },
  // Bonfire publishes no schema of its own; its API follows vf-graphql 0.9.
  bonfire: V09,
};
