/** The ledger client: journal events as Valueflows records, and the transports that deliver them. */
import { GraphqlTransport, type Flavour, type LedgerIdMap } from './graphql.js';
import type { HttpLedgerOptions } from './http.js';
import { JsonBatchTransport } from './json-batch.js';
import type { LedgerTransport } from './types.js';

export * from './types.js';
export { recordsFor, majorUnits, MappingError, MAPPED_KINDS, type JournalEventInput, type MappingContext } from './mapping.js';
export { agent, resource, sessionRecordId, eventRecordId } from './ids.js';
export { classify, LedgerRequestError, type Verdict } from './classify.js';
export { totalsOf } from './totals.js';
export { FLAVOURS } from './graphql.js';
export { JsonBatchTransport, GraphqlTransport };
export type { Flavour, LedgerIdMap, HttpLedgerOptions };

/** The transport a gateway's `ledger:` config asks for. */
export function createTransport(opts: HttpLedgerOptions & { transport: 'json' | 'graphql'; flavour?: Flavour; ids?: LedgerIdMap }): LedgerTransport {
  return opts.transport === 'graphql' ? new GraphqlTransport(opts) : new JsonBatchTransport(opts);
}
