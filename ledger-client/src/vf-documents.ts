/**
 * The GraphQL documents the ledger client sends, as pure functions of the records, the flavour
 * (flavours.ts) and the ids the server chose: graphql.ts posts them, and the tests validate every
 * one against the published schemas (../schemas/). No Valueflows create params take our id, our
 * creation time or a correction link, so those go in a marker on the last line of the note:
 * `[ovn-gateway ‹gatewayId› record ‹id›; created ‹ISO time›; corrects ‹id›]`. The objects the
 * gateway creates for itself (agents, resource specifications) carry `[ovn-gateway ‹our id›]`.
 */
import type { FlavourTraits } from './flavours.js';
import type { LedgerRecord, Measure } from './types.js';

export interface GqlRequest {
  query: string;
  variables: Record<string, unknown>;
}

// ---- markers: our ids in the server's notes ----

interface RecordMarker {
  gatewayId: string;
  id: string;
  created: string;
  corrects?: string;
}

export const recordMarker = (gatewayId: string, r: LedgerRecord): string =>
  `[ovn-gateway ${gatewayId} record ${r.id}; created ${r.created}${r.type !== 'process' && r.corrects ? `; corrects ${r.corrects}` : ''}]`;

const RECORD_MARKER = /\[ovn-gateway (\S+) record ([^\s;]+); created ([^;\]]+)(?:; corrects ([^\s\]]+))?\]$/;

/** The marker at the end of a note, when there is one. */
export function readRecordMarker(note: unknown): RecordMarker | null {
  const m = typeof note === 'string' ? RECORD_MARKER.exec(note) : null;
  return m ? { gatewayId: m[1]!, id: m[2]!, created: m[3]!, ...(m[4] ? { corrects: m[4] } : {}) } : null;
}

export const directoryMarker = (ourId: string) => `[ovn-gateway ${ourId}]`;

export function readDirectoryMarker(note: unknown): string | null {
  return (typeof note === 'string' && /\[ovn-gateway ([^\s\]]+)\]$/.exec(note)?.[1]) || null;
}

const withMarker = (note: string | undefined, marker: string) => (note ? `${note}\n${marker}` : marker);

// ---- creating ----

/** A create mutation: its field, argument, input type and the payload field that holds the new object. */
interface Creation {
  field: string;
  arg: string;
  type: string;
  payload: string;
}

export const CREATE = {
  process: { field: 'createProcess', arg: 'process', type: 'ProcessCreateParams', payload: 'process' },
  event: { field: 'createEconomicEvent', arg: 'event', type: 'EconomicEventCreateParams', payload: 'economicEvent' },
  claim: { field: 'createClaim', arg: 'claim', type: 'ClaimCreateParams', payload: 'claim' },
  commitment: { field: 'createCommitment', arg: 'commitment', type: 'CommitmentCreateParams', payload: 'commitment' },
  person: { field: 'createPerson', arg: 'person', type: 'AgentCreateParams', payload: 'agent' },
  organization: { field: 'createOrganization', arg: 'organization', type: 'OrganizationCreateParams', payload: 'agent' },
  unit: { field: 'createUnit', arg: 'unit', type: 'UnitCreateParams', payload: 'unit' },
  spec: { field: 'createResourceSpecification', arg: 'resourceSpecification', type: 'ResourceSpecificationCreateParams', payload: 'resourceSpecification' },
} as const satisfies Record<string, Creation>;

export interface Create {
  creation: Creation;
  params: Record<string, unknown>;
}

/** Creates in one request, as aliased mutations `r0`, `r1` … executed in order. */
export function mutationDocument(items: readonly Create[]): GqlRequest {
  const defs = items.map((c, i) => `$r${i}: ${c.creation.type}!`);
  const fields = items.map((c, i) => `r${i}: ${c.creation.field}(${c.creation.arg}: $r${i}) { ${c.creation.payload} { id } }`);
  return { query: `mutation Create(${defs.join(', ')}) {\n  ${fields.join('\n  ')}\n}`, variables: Object.fromEntries(items.map((c, i) => [`r${i}`, c.params])) };
}

/** Our references in a record, to resolve before it is sent (`corrects` is only written in the marker). */
export function referencesOf(r: LedgerRecord): { agents: string[]; units: string[]; specs: string[]; records: string[] } {
  if (r.type === 'process') return { agents: [], units: [], specs: [], records: [] };
  const measures = r.type === 'claim' ? [r.resourceQuantity] : [r.resourceQuantity, r.effortQuantity];
  return {
    agents: [r.provider, r.receiver],
    units: measures.flatMap((m) => (m ? [m.hasUnit] : [])),
    specs: r.resourceConformsTo ? [r.resourceConformsTo] : [],
    records: r.type === 'claim' ? [r.triggeredBy] : r.inputOf ? [r.inputOf] : [],
  };
}

const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/**
 * A record's create mutation for this flavour. `ref` gives the server's id of anything the record
 * names (agents, units, specifications, earlier records): graphql.ts resolves them first. The
 * tool as an inventoried resource (`resourceInventoriedAs`) is not sent: an EconomicResource
 * exists on a server only once an event raised it, which the gateway does not record; the tool's
 * ResourceSpecification stands for it.
 */
export function recordCreate(r: LedgerRecord, traits: FlavourTraits, gatewayId: string, ref: (ourId: string) => string): Create {
  const note = withMarker(r.note, recordMarker(gatewayId, r));
  const measure = (m: Measure | undefined) => m && { hasNumericalValue: traits.decimal ? String(m.hasNumericalValue) : m.hasNumericalValue, hasUnit: ref(m.hasUnit) };
  if (r.type === 'process') return { creation: CREATE.process, params: defined({ name: r.name, hasBeginning: r.hasBeginning, hasEnd: r.hasEnd, note }) };
  const flow = {
    action: traits.actions[r.action],
    provider: ref(r.provider),
    receiver: ref(r.receiver),
    resourceConformsTo: r.resourceConformsTo && ref(r.resourceConformsTo),
    resourceQuantity: measure(r.resourceQuantity),
    note,
  };
  if (r.type === 'economic-event') {
    return {
      creation: CREATE.event,
      params: defined({
        ...flow,
        inputOf: r.inputOf && ref(r.inputOf),
        effortQuantity: measure(r.effortQuantity),
        hasBeginning: r.hasBeginning,
        hasEnd: r.hasEnd,
        hasPointInTime: r.hasPointInTime,
      }),
    };
  }
  if (traits.owed === 'claim') return { creation: CREATE.claim, params: defined({ ...flow, triggeredBy: ref(r.triggeredBy), created: r.created, due: r.due }) };
  // A promise to transfer the money, as of when it was charged; the triggering event is named in the note.
  return { creation: CREATE.commitment, params: defined({ ...flow, hasPointInTime: r.created, due: r.due }) };
}

// ---- reading ----

/** The root lists the client reads, with what it reads of each. */
const MEASURE = '{ hasNumericalValue hasUnit { symbol } }';
export const LISTS = {
  agents: { field: 'agents', select: 'id name note' },
  units: { field: 'units', select: 'id label symbol' },
  specs: { field: 'resourceSpecifications', select: 'id name note' },
  processes: { field: 'processes', select: 'id note' },
  events: { field: 'economicEvents', select: `id note action { id } resourceQuantity ${MEASURE} effortQuantity ${MEASURE}` },
  claims: { field: 'claims', select: `id note action { id } resourceQuantity ${MEASURE}` },
  commitments: { field: 'commitments', select: `id note action { id } resourceQuantity ${MEASURE}` },
} as const;
export type ListName = keyof typeof LISTS;

export const PAGE_SIZE = 100;

/** One page of a root list: after `cursor` (a Relay cursor, or for start/limit lists the last id read). */
export function pageDocument(list: ListName, traits: FlavourTraits, cursor: string | null): GqlRequest {
  const { field, select } = LISTS[list];
  if (traits.lists === 'connection') {
    return {
      query: `query Page($after: String) {\n  page: ${field}(first: ${PAGE_SIZE}, after: $after) { edges { node { ${select} } } pageInfo { hasNextPage endCursor } }\n}`,
      variables: { after: cursor },
    };
  }
  return { query: `query Page($start: ID) {\n  page: ${field}(start: $start, limit: ${PAGE_SIZE}) { ${select} }\n}`, variables: { start: cursor } };
}

/** The input events of processes, by the server's ids: `p0`, `p1` … */
export function processInputsDocument(processIds: readonly string[], traits: FlavourTraits): GqlRequest {
  const defs = processIds.map((_, i) => `$p${i}: ID!`);
  const fields = processIds.map((_, i) => `p${i}: process(id: $p${i}) { ${traits.processInputs} { id note } }`);
  return { query: `query Inputs(${defs.join(', ')}) {\n  ${fields.join('\n  ')}\n}`, variables: Object.fromEntries(processIds.map((id, i) => [`p${i}`, id])) };
}
