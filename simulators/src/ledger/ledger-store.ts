/**
 * The simulated ledger's storage: its own SQLite database, which is the ground truth tests
 * compare with. One table holds both APIs' rows:
 * - JSON batch API records (`via` json): validated, deduplicated by our id (the same id with
 *   other content is refused), kept with `created` in one notation so periods compare as text;
 * - Valueflows objects created through GraphQL (`via` graphql): under an id the ledger chooses,
 *   never deduplicated (no Valueflows server does), with the record id of the gateway's marker
 *   in the note when there is one, so that the truth still counts rows per record.
 * Every receipt (stored, duplicate or rejected) is kept too.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { totalsOf } from '../../../ledger-client/src/totals.js';
import type { LedgerRecord, LedgerTotals } from '../../../ledger-client/src/types.js';
import { readRecordMarker } from '../../../ledger-client/src/vf-documents.js';
import { issueText, problemOf, recordSchema, type Accepted } from './validation.js';

/** A Valueflows object as stored: its type, the id the ledger gave it, and its fields as created (references as ids). */
export interface VfObject {
  __typename: string;
  id: string;
  [field: string]: unknown;
}

interface Row {
  seq: number;
  id: string;
  record_id: string;
  via: 'json' | 'graphql';
  stored_at: string;
  body: string;
}

/** A record of the gateway's at the ledger: by the gateway's id, as either API stored it. */
export type StoredRecord = { seq: number; id: string; storedAt: string } & ({ via: 'json'; record: LedgerRecord } | { via: 'graphql'; record: VfObject });

export type RecordResult = { id: string; status: 'stored' | 'duplicate' } | { id: string; status: 'rejected'; message: string };

/** The comparable content of a record: everything Valueflows sees, keys in order. */
const canonical = (r: Accepted) =>
  JSON.stringify(
    Object.fromEntries(
      Object.entries(r)
        .filter(([k, v]) => k !== 'toolId' && k !== 'journalEventId' && v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : 1)),
    ),
  );

const storedOf = (r: Row): StoredRecord =>
  r.via === 'json'
    ? { seq: r.seq, id: r.record_id, via: 'json', storedAt: r.stored_at, record: JSON.parse(r.body) as LedgerRecord }
    : { seq: r.seq, id: r.record_id, via: 'graphql', storedAt: r.stored_at, record: JSON.parse(r.body) as VfObject };

export class LedgerStore {
  readonly db: Database.Database;
  private readonly stmt;
  private readonly listStmts = new Map<string, Database.Statement>();

  constructor(file = ':memory:', private readonly now: () => Date = () => new Date()) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // As a ledger server would: consistent after a crash, without a disk sync per request.
    this.db.pragma('synchronous = NORMAL');
    const columns = this.db.prepare(`SELECT name FROM pragma_table_info('records')`).pluck().all() as string[];
    if (columns.length && !columns.includes('record_id')) throw new Error(`${file}: a ledger simulator database of an older layout: delete it (it is test data) or give another --db`);
    // No unique index on id: deduplication is the ledger's logic, and the ground truth counts
    // rows per record, so a failure to deduplicate shows up as a count of 2 rather than a crash.
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, type TEXT NOT NULL,
        created TEXT NOT NULL, body TEXT NOT NULL, canonical TEXT NOT NULL, via TEXT NOT NULL, stored_at TEXT NOT NULL,
        record_id TEXT, input_of TEXT);
      CREATE INDEX IF NOT EXISTS records_id ON records (id);
      CREATE INDEX IF NOT EXISTS records_created ON records (created);
      -- GraphQL's lists and a process's inputs; partial, so that the JSON API's inserts do not pay for them.
      CREATE INDEX IF NOT EXISTS records_type ON records (type, seq) WHERE via = 'graphql';
      CREATE INDEX IF NOT EXISTS records_input_of ON records (input_of) WHERE input_of IS NOT NULL;
      CREATE TABLE IF NOT EXISTS receipts (id TEXT NOT NULL, via TEXT NOT NULL, at TEXT NOT NULL, result TEXT NOT NULL);`);
    this.stmt = {
      row: this.db.prepare('SELECT type, canonical FROM records WHERE id = ? ORDER BY seq LIMIT 1'),
      insert: this.db.prepare('INSERT INTO records (id, type, created, body, canonical, via, stored_at, record_id, input_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      receipt: this.db.prepare('INSERT INTO receipts (id, via, at, result) VALUES (?, ?, ?, ?)'),
      object: this.db.prepare(`SELECT body FROM records WHERE id = ? AND via = 'graphql'`).pluck(),
      seqOf: this.db.prepare(`SELECT seq FROM records WHERE id = ? AND via = 'graphql'`).pluck(),
      inputs: this.db.prepare(`SELECT body FROM records WHERE input_of = ? AND via = 'graphql' ORDER BY seq`).pluck(),
    };
  }

  private row(id: string): { type: string; canonical: string } | undefined {
    return this.stmt.row.get(id) as { type: string; canonical: string } | undefined;
  }

  typeOf(id: string): string | undefined {
    return this.row(id)?.type;
  }

  // ---- the JSON batch API ----

  /** Validates and stores one record, or says why not. */
  submit(raw: unknown): RecordResult {
    const at = this.now().toISOString();
    const rawId = typeof (raw as { id?: unknown })?.id === 'string' ? (raw as { id: string }).id : '';
    const result = ((): RecordResult => {
      const parsed = recordSchema.safeParse(raw);
      if (!parsed.success) return { id: rawId, status: 'rejected', message: issueText(parsed.error) };
      const r = parsed.data;
      const existing = this.row(r.id);
      if (existing) {
        return existing.canonical === canonical(r) ? { id: r.id, status: 'duplicate' } : { id: r.id, status: 'rejected', message: `id: ${r.id} is already used by a different record` };
      }
      const problem = problemOf(r, (id) => this.typeOf(id));
      if (problem) return { id: r.id, status: 'rejected', message: problem };
      // `created` is kept as an instant in one notation, so periods compare as text.
      const record = { ...r, created: new Date(r.created).toISOString() };
      this.stmt.insert.run(r.id, r.type, record.created, JSON.stringify(record), canonical(r), 'json', at, r.id, null);
      return { id: r.id, status: 'stored' };
    })();
    this.stmt.receipt.run(result.id, 'json', at, result.status);
    return result;
  }

  /** Which of these ids the JSON batch API holds. */
  has(ids: readonly string[]): string[] {
    const stmt = this.db.prepare(`SELECT 1 FROM records WHERE id = ? AND via = 'json' LIMIT 1`);
    return ids.filter((id) => stmt.get(id) !== undefined);
  }

  /** Over the JSON batch API's records created in [from, to) (GraphQL's are counted by the client, from the lists). */
  totals(from: string, to: string): LedgerTotals {
    const rows = this.db.prepare(`SELECT body FROM records WHERE via = 'json' AND created >= ? AND created < ? ORDER BY seq`).pluck().all(new Date(from).toISOString(), new Date(to).toISOString()) as string[];
    return totalsOf(rows.map((b) => JSON.parse(b) as LedgerRecord));
  }

  // ---- Valueflows objects (GraphQL) ----

  /** Stores a new object under an id of the ledger's choosing. */
  create(typename: string, fields: Record<string, unknown>): VfObject {
    const at = this.now().toISOString();
    const object: VfObject = { __typename: typename, id: randomUUID(), ...fields };
    const marker = readRecordMarker(fields.note);
    const created = marker && !Number.isNaN(Date.parse(marker.created)) ? new Date(marker.created).toISOString() : at;
    const inputOf = typeof fields.inputOf === 'string' ? fields.inputOf : null;
    this.stmt.insert.run(object.id, typename, created, JSON.stringify(object), '', 'graphql', at, marker?.id ?? null, inputOf);
    if (marker) this.stmt.receipt.run(marker.id, 'graphql', at, 'stored');
    return object;
  }

  /** A refused object that carried a record's marker: a receipt, so `receivedOf` counts it. */
  refused(fields: Record<string, unknown>): void {
    const marker = readRecordMarker(fields.note);
    if (marker) this.stmt.receipt.run(marker.id, 'graphql', this.now().toISOString(), 'rejected');
  }

  object(id: string): VfObject | null {
    const body = this.stmt.object.get(id) as string | undefined;
    return body ? (JSON.parse(body) as VfObject) : null;
  }

  /** Objects of these types in the order they were stored, after the object `after` (an id) or the position `afterSeq`. */
  list(typenames: readonly string[], from: { afterSeq?: number; afterId?: string | null }, limit: number): { seq: number; object: VfObject }[] {
    const afterSeq = from.afterId ? ((this.stmt.seqOf.get(from.afterId) as number | undefined) ?? Number.MAX_SAFE_INTEGER) : (from.afterSeq ?? 0);
    const key = typenames.join(',');
    let stmt = this.listStmts.get(key);
    if (!stmt) this.listStmts.set(key, (stmt = this.db.prepare(`SELECT seq, body FROM records WHERE via = 'graphql' AND type IN (${typenames.map(() => '?').join(', ')}) AND seq > ? ORDER BY seq LIMIT ?`)));
    const rows = stmt.all(...typenames, afterSeq, limit) as { seq: number; body: string }[];
    return rows.map((r) => ({ seq: r.seq, object: JSON.parse(r.body) as VfObject }));
  }

  /** The events that are inputs of a process. */
  inputsOf(processId: string): VfObject[] {
    return (this.stmt.inputs.all(processId) as string[]).map((b) => JSON.parse(b) as VfObject);
  }

  // ---- ground truth ----

  /** The gateway's records held, by either API, in the order they were stored. */
  records(): StoredRecord[] {
    return (this.db.prepare('SELECT seq, id, record_id, via, stored_at, body FROM records WHERE record_id IS NOT NULL ORDER BY seq').all() as Row[]).map(storedOf);
  }

  /** How many rows hold this record: 1 for every record ever sent, whatever the retries. */
  countOf(recordId: string): number {
    return this.db.prepare('SELECT COUNT(*) FROM records WHERE record_id = ?').pluck().get(recordId) as number;
  }

  /** How many times this record arrived (stored, duplicate or rejected). */
  receivedOf(recordId: string): number {
    return this.db.prepare('SELECT COUNT(*) FROM receipts WHERE id = ?').pluck().get(recordId) as number;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
