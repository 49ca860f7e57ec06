/**
 * The ledger client's vocabulary: Valueflows records with stable ids, what a ledger answers
 * for each, and the transport interface every ledger flavour implements. The gateway's
 * outbox depends on these types only.
 */

/** OM2 units used in quantities. */
export type Unit = 'om2:hour' | 'om2:minute' | 'om2:gram' | 'om2:kilowattHour' | 'om2:one' | `iso4217:${string}`;

export interface Measure {
  hasNumericalValue: number;
  hasUnit: Unit;
}

/** Fields common to every record sent to the ledger. */
interface RecordBase {
  /**
   * Stable id derived from the journal (the event's id and hash, and the record's place among
   * the records of that event): a retry sends the same id, so the ledger can never hold a record twice.
   */
  id: string;
  /** When the gateway created the record (the journal event's time), ISO 8601. */
  created: string;
  /** Which tool it concerns: the outbox delivers in order per tool. */
  toolId: string;
  /** The journal event it comes from. */
  journalEventId: number;
}

/** A usage session as a Valueflows Process ("Use of <tool> by <affiliate>"). */
export interface ProcessRecord extends RecordBase {
  type: 'process';
  name: string;
  hasBeginning: string;
  hasEnd: string;
  note?: string;
}

export type EventAction = 'use' | 'consume' | 'work' | 'transfer';

export interface EconomicEventRecord extends RecordBase {
  type: 'economic-event';
  action: EventAction;
  provider: string;
  receiver: string;
  /** The Process this event is an input of (use, consume, work). */
  inputOf?: string;
  resourceInventoriedAs?: string;
  /** The kind of resource (ids.ts `spec`): the tool, its material, technician work. */
  resourceConformsTo?: string;
  resourceQuantity?: Measure;
  effortQuantity?: Measure;
  hasBeginning?: string;
  hasEnd?: string;
  hasPointInTime?: string;
  note?: string;
  /** The id of a record this one corrects (Valueflows `corrects`). */
  corrects?: string;
}

/** Money owed from one agent to another for a session (the cost split). */
export interface ClaimRecord extends RecordBase {
  type: 'claim';
  action: 'transfer';
  provider: string;
  receiver: string;
  /** The currency (ids.ts `spec.currency`). */
  resourceConformsTo: string;
  resourceQuantity: Measure;
  /** The event (or process) that triggered the claim. */
  triggeredBy: string;
  created: string;
  due?: string;
  note?: string;
  corrects?: string;
}

export type LedgerRecord = ProcessRecord | EconomicEventRecord | ClaimRecord;

/** How a ledger answered for one record. */
export type Outcome =
  | { kind: 'delivered'; id: string }
  /** Try again later: network error, timeout, 5xx, 429 (retryAfterMs from Retry-After when given). */
  | { kind: 'retry'; id: string; message: string; retryAfterMs?: number }
  /** The ledger refuses this record (4xx validation): a person must look at it. */
  | { kind: 'permanent'; id: string; message: string };

/** Totals the ledger holds, for reconciliation: per action/type and unit. */
export interface LedgerTotals {
  records: number;
  /** key: `${type}:${action}:${unit}` → sum of quantities. */
  sums: Record<string, number>;
}

export interface LedgerTransport {
  readonly name: string;
  /**
   * Sends records in order; resolves with one outcome per record (same order). A failure of
   * the whole request (connection refused, timeout, 5xx, 429) is a `retry` for every record;
   * when the connection dropped after the request was sent, the outcome is unknown: also
   * `retry`, and the caller resolves it with `lookup` before sending again.
   */
  send(records: readonly LedgerRecord[]): Promise<Outcome[]>;
  /**
   * The ids of those of these records the ledger already holds (whose outcome was unknown).
   * The records, not only their ids: a ledger that chose its own ids is searched by type.
   */
  lookup(records: readonly LedgerRecord[]): Promise<Set<string>>;
  /** What the ledger holds from this gateway between two instants (by the records' `created`). */
  totals(from: string, to: string): Promise<LedgerTotals>;
}
