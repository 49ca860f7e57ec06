/**
 * The simulated ledger's storage: its own SQLite database of records and of every receipt
 * (stored, duplicate or rejected), which is the ground truth tests compare with. A record is
 * validated, deduplicated by id (the same id with other content is refused) and kept with
 * `created` in one notation, so periods compare as text.
 */
import Database from 'better-sqlite3';
import { totalsOf } from '../../../ledger-client/src/totals.js';
import type { LedgerRecord, LedgerTotals } from '../../../ledger-client/src/types.js';
import { issueText, problemOf, recordSchema, type Accepted } from './validation.js';

export interface StoredRecord {
  seq: number;
  id: string;
  via: 'json' | 'graphql';
  storedAt: string;
  record: LedgerRecord;
}

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

export class LedgerStore {
  readonly db: Database.Database;
  private readonly stmt;

  constructor(file = ':memory:', private readonly now: () => Date = () => new Date()) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // As a ledger server would: consistent after a crash, without a disk sync per request.
    this.db.pragma('synchronous = NORMAL');
    // No unique index on id: deduplication is the ledger's logic, and the ground truth counts
    // rows per id, so a failure to deduplicate shows up as a count of 2 rather than a crash.
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, type TEXT NOT NULL,
        created TEXT NOT NULL, body TEXT NOT NULL, canonical TEXT NOT NULL, via TEXT NOT NULL, stored_at TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS records_id ON records (id);
      CREATE INDEX IF NOT EXISTS records_created ON records (created);
      CREATE TABLE IF NOT EXISTS receipts (id TEXT NOT NULL, via TEXT NOT NULL, at TEXT NOT NULL, result TEXT NOT NULL);`);
    this.stmt = {
      row: this.db.prepare('SELECT type, canonical FROM records WHERE id = ? ORDER BY seq LIMIT 1'),
      insert: this.db.prepare('INSERT INTO records (id, type, created, body, canonical, via, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      receipt: this.db.prepare('INSERT INTO receipts (id, via, at, result) VALUES (?, ?, ?, ?)'),
    };
  }

  private row(id: string): { type: string; canonical: string } | undefined {
    return this.stmt.row.get(id) as { type: string; canonical: string } | undefined;
  }

  typeOf(id: string): string | undefined {
    return this.row(id)?.type;
  }

  /** Validates and stores one record, or says why not. */
  submit(raw: unknown, via: 'json' | 'graphql'): RecordResult {
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
      this.stmt.insert.run(r.id, r.type, record.created, JSON.stringify(record), canonical(r), via, at);
      return { id: r.id, status: 'stored' };
    })();
    this.stmt.receipt.run(result.id, via, at, result.status);
    return result;
  }

  get(id: string): LedgerRecord | null {
    const row = this.db.prepare('SELECT body FROM records WHERE id = ? ORDER BY seq LIMIT 1').get(id) as { body: string } | undefined;
    return row ? (JSON.parse(row.body) as LedgerRecord) : null;
  }

  has(ids: readonly string[]): string[] {
    const stmt = this.db.prepare('SELECT 1 FROM records WHERE id = ? LIMIT 1');
    return ids.filter((id) => stmt.get(id) !== undefined);
  }

  /** Over the records created in [from, to). */
  totals(from: string, to: string): LedgerTotals {
    const rows = this.db.prepare('SELECT body FROM records WHERE created >= ? AND created < ? ORDER BY seq').pluck().all(new Date(from).toISOString(), new Date(to).toISOString()) as string[];
    return totalsOf(rows.map((b) => JSON.parse(b) as LedgerRecord));
  }

  all(): StoredRecord[] {
    return (this.db.prepare('SELECT seq, id, via, stored_at AS storedAt, body FROM records ORDER BY seq').all() as (Omit<StoredRecord, 'record'> & { body: string })[]).map(({ body, ...r }) => ({
      ...r,
      record: JSON.parse(body) as LedgerRecord,
    }));
  }

  /** How many rows hold this id: 1 for every record ever sent, whatever the retries. */
  countOf(id: string): number {
    return this.db.prepare('SELECT COUNT(*) FROM records WHERE id = ?').pluck().get(id) as number;
  }

  /** How many times a record with this id arrived (stored, duplicate or rejected). */
  receivedOf(id: string): number {
    return this.db.prepare('SELECT COUNT(*) FROM receipts WHERE id = ?').pluck().get(id) as number;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
