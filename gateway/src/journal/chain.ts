/**
 * The journal's hash chain: each event carries SHA-256 over the previous event's hash and
 * its own canonical encoding, so altering or removing any event breaks every hash after it.
 * The canonical encoding is the JSON array [id, at, kind, deviceId, data] with `data` as the
 * exact JSON text stored.
 */
import { createHash } from 'node:crypto';

export const GENESIS = '0'.repeat(64);

export interface ChainRow {
  id: number;
  at: string;
  kind: string;
  device_id: string | null;
  data: string;
}

export function chainHash(prev: string, row: ChainRow): string {
  return createHash('sha256')
    .update(prev)
    .update('\n')
    .update(JSON.stringify([row.id, row.at, row.kind, row.device_id, row.data]))
    .digest('hex');
}

export type ChainBreak =
  | { id: number; problem: 'altered'; detail: string }
  | { id: number; problem: 'removed'; detail: string };

export interface VerifyResult {
  events: number;
  lastHash: string;
  /** The first event at which the chain breaks, or null when it is intact. */
  firstBreak: ChainBreak | null;
}

/** Walks rows in id order; names the first event that was altered, or where events are missing. */
export function verifyChain(rows: Iterable<ChainRow & { hash: string }>): VerifyResult {
  let prev = GENESIS;
  let expectedId = 1;
  let events = 0;
  for (const row of rows) {
    events++;
    if (row.id !== expectedId) {
      return { events, lastHash: prev, firstBreak: { id: row.id, problem: 'removed', detail: `events ${expectedId}…${row.id - 1} are missing before event ${row.id}` } };
    }
    const hash = chainHash(prev, row);
    if (hash !== row.hash) {
      return { events, lastHash: prev, firstBreak: { id: row.id, problem: 'altered', detail: `event ${row.id} (${row.kind}, ${row.at}) does not match its hash` } };
    }
    prev = hash;
    expectedId++;
  }
  return { events, lastHash: prev, firstBreak: null };
}
