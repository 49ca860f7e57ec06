/**
 * The journal's hash chain: each event carries SHA-256 over the previous event's hash and
 * its own canonical encoding, so altering or removing any event breaks every hash after it.
 *
 * The canonical encoding is the JSON array of the event's columns, `data` as the exact JSON text
 * stored. Which columns depends on the chain format the event was written with (the table
 * `chain_formats` says from which event id each format applies): format 1 left `clock_synced`
 * out; format 2 covers every stored column. Hashes already written are never recomputed.
 */
import { hash } from 'node:crypto';

export const GENESIS = '0'.repeat(64);

/** The columns each chain format encodes, in order. */
export const CHAIN_FORMATS = {
  1: ['id', 'at', 'kind', 'device_id', 'data'],
  2: ['id', 'at', 'kind', 'device_id', 'data', 'clock_synced'],
} as const;
export type ChainFormat = keyof typeof CHAIN_FORMATS;
/** The format new events are chained with. */
export const CHAIN_FORMAT: ChainFormat = 2;

export interface ChainRow {
  id: number;
  at: string;
  kind: string;
  device_id: string | null;
  data: string;
  clock_synced: number | null;
}

/** From which event id a chain format applies; ids before the first segment are format 1. */
export interface FormatSegment {
  from: number;
  format: ChainFormat;
}

export function chainHash(prev: string, row: ChainRow, format: ChainFormat = CHAIN_FORMAT): string {
  return hash('sha256', `${prev}\n${JSON.stringify(CHAIN_FORMATS[format].map((c) => row[c]))}`, 'hex');
}

/** The last event of a chain: what the head file beside the journal records. */
export interface ChainHead {
  id: number;
  hash: string;
}

/** Where the chain breaks: an event altered, events removed, or the chain rewritten up to the event its head names. */
export interface ChainBreak {
  id: number;
  problem: 'altered' | 'removed' | 'rewritten';
  detail: string;
}

export interface VerifyResult {
  events: number;
  /** Events verified before the first break (all of them when the chain is intact). */
  intact: number;
  lastHash: string;
  /** The first event at which the chain breaks, or null when it is intact. */
  firstBreak: ChainBreak | null;
}

/**
 * Walks rows in id order from event `from` (whose predecessor's hash is `prev`); names the first
 * event that was altered, or where events are missing. `formats` says how each event is encoded.
 */
export function verifyChain(
  rows: Iterable<ChainRow & { hash: string }>,
  formats: readonly FormatSegment[] = [{ from: 1, format: CHAIN_FORMAT }],
  start: { from: number; prev: string } = { from: 1, prev: GENESIS },
): VerifyResult {
  let prev = start.prev;
  let expectedId = start.from;
  let events = 0;
  const formatOf = formatLookup(formats);
  const broken = (firstBreak: ChainBreak): VerifyResult => ({ events, intact: events - 1, lastHash: prev, firstBreak });
  for (const row of rows) {
    events++;
    if (row.id !== expectedId) return broken({ id: row.id, problem: 'removed', detail: `events ${expectedId}…${row.id - 1} are missing before event ${row.id}` });
    const hash = chainHash(prev, row, formatOf(row.id));
    if (hash !== row.hash) return broken({ id: row.id, problem: 'altered', detail: `event ${row.id} (${row.kind}, ${row.at}) does not match its hash` });
    prev = hash;
    expectedId++;
  }
  return { events, intact: events, lastHash: prev, firstBreak: null };
}

/** The format of an event id, for segments in ascending order of `from`. */
export function formatLookup(formats: readonly FormatSegment[]): (id: number) => ChainFormat {
  return (id) => {
    let format: ChainFormat = 1;
    for (const s of formats) if (id >= s.from) format = s.format;
    return format;
  };
}

/**
 * How the chain's end compares with the head recorded beside it: null when the event the head
 * names is there with its hash; otherwise what happened, for a person. `last` is the chain's
 * last event, `hashAt` the stored hash of the event the head names (null when it is missing).
 */
export function headMismatch(head: ChainHead, last: ChainHead | null, hashAt: string | null): string | null {
  const lastId = last?.id ?? 0;
  if (head.id > lastId) {
    const missing = head.id - lastId;
    return `the last ${missing === 1 ? 'event' : `${missing} events`} (${lastId + 1}${missing === 1 ? '' : `…${head.id}`}) ${missing === 1 ? 'is' : 'are'} missing: the journal ends at event ${lastId}, its head names event ${head.id}`;
  }
  if (hashAt !== head.hash) return `event ${head.id} is not the one its head names (hash ${head.hash.slice(0, 16)}…): the chain was rewritten up to it`;
  return null;
}
