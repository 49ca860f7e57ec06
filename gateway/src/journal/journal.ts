/**
 * The journal: an append-only record of what happened, in SQLite (WAL) in the data
 * directory. Migrations run forward at open; `PRAGMA user_version` holds the schema version.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chainHash, GENESIS, verifyChain, type ChainRow, type VerifyResult } from './chain.js';
import { MIGRATIONS } from './migrations.js';

export interface JournalEvent {
  id: number;
  at: string;
  kind: string;
  deviceId: string | null;
  data: Record<string, unknown>;
}

export interface EventQuery {
  deviceId?: string;
  kind?: string;
  /** Any of these kinds. */
  kinds?: readonly string[];
  afterId?: number;
  limit?: number;
}

export class Journal {
  readonly db: Database.Database;
  private readonly insert: Database.Statement<[number, string, string, string | null, string, string]>;
  private readonly last: Database.Statement<[], { id: number; hash: string }>;
  private readonly append: (kind: string, deviceId: string | null, data: string) => number;
  private readonly latestStmt: Database.Statement<[string, string | null]>;
  private readonly taps: ((e: JournalEvent & { hash: string }) => void)[] = [];

  private constructor(
    readonly file: string,
    private readonly now: () => Date,
  ) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode keeps the database consistent after a power cut and spares the SD card
    // an fsync per meter reading; the last commits before a cut may be lost, never corrupted.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    this.insert = this.db.prepare('INSERT INTO events (id, at, kind, device_id, data, hash) VALUES (?, ?, ?, ?, ?, ?)');
    this.last = this.db.prepare('SELECT id, hash FROM events ORDER BY id DESC LIMIT 1');
    this.latestStmt = this.db.prepare('SELECT id, at, kind, device_id AS deviceId, data FROM events WHERE kind = ? AND device_id IS ? ORDER BY id DESC LIMIT 1');
    // Read the chain's end and append in one transaction, so that no other writer can slip in between.
    this.append = this.db.transaction((kind: string, deviceId: string | null, data: string) => {
      const last = this.last.get();
      const row: ChainRow = { id: (last?.id ?? 0) + 1, at: this.now().toISOString(), kind, device_id: deviceId, data };
      const hash = chainHash(last?.hash ?? GENESIS, row);
      this.insert.run(row.id, row.at, row.kind, row.device_id, row.data, hash);
      if (this.taps.length) for (const tap of this.taps) tap({ id: row.id, at: row.at, kind, deviceId, data: JSON.parse(data) as Record<string, unknown>, hash });
      return row.id;
    });
  }

  static open(dataDir: string, now: () => Date = () => new Date()): Journal {
    mkdirSync(dataDir, { recursive: true });
    return new Journal(join(dataDir, 'journal.sqlite'), now);
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /**
   * Calls `tap` with every event appended from now on, inside the transaction that appends
   * it: what it writes (the ledger outbox) commits or rolls back with the event.
   */
  tap(tap: (e: JournalEvent & { hash: string }) => void): void {
    this.taps.push(tap);
  }

  /** Appends an event to the chain; returns its id. */
  record(kind: string, deviceId: string | null, data: Record<string, unknown> = {}): number {
    return this.append(kind, deviceId, JSON.stringify(data));
  }

  /**
   * Runs `fn` in one transaction whose commit is fsynced (synchronous = FULL for this commit
   * only): for what must survive a power cut that follows it, such as a closed session.
   */
  durably<T>(fn: () => T): T {
    this.db.pragma('synchronous = FULL');
    try {
      return this.db.transaction(fn)();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /** The newest event of a kind (for a device), or null. */
  latest(kind: string, deviceId: string | null): JournalEvent | null {
    const row = this.latestStmt.get(kind, deviceId) as (Omit<JournalEvent, 'data'> & { data: string }) | undefined;
    return row ? { ...row, data: JSON.parse(row.data) as Record<string, unknown> } : null;
  }

  events(q: EventQuery = {}): JournalEvent[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    const filter = (clause: string, value: string | number | undefined) => {
      if (value === undefined) return;
      where.push(clause);
      args.push(value);
    };
    filter('device_id = ?', q.deviceId);
    filter('kind = ?', q.kind);
    if (q.kinds?.length) {
      where.push(`kind IN (${q.kinds.map(() => '?').join(', ')})`);
      args.push(...q.kinds);
    }
    filter('id > ?', q.afterId);
    const sql = `SELECT id, at, kind, device_id AS deviceId, data FROM events ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, q.limit ?? 1000) as (Omit<JournalEvent, 'data'> & { data: string })[];
    return rows.map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }));
  }

  /** Events by id. */
  eventsByIds(ids: readonly number[]): Map<number, JournalEvent> {
    const rows = ids.length
      ? (this.db.prepare(`SELECT id, at, kind, device_id AS deviceId, data FROM events WHERE id IN (${ids.map(() => '?').join(', ')})`).all(...ids) as (Omit<JournalEvent, 'data'> & { data: string })[])
      : [];
    return new Map(rows.map((r) => [r.id, { ...r, data: JSON.parse(r.data) as Record<string, unknown> }]));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/**
 * Walks the hash chain of a journal file, read-only (safe while the gateway runs), and names
 * the first event that was altered or removed.
 */
export function verifyJournalFile(file: string): VerifyResult {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version < 2) throw new Error(`${file}: schema version ${version} has no hash chain; start the gateway once to upgrade it`);
    return verifyChain(db.prepare('SELECT id, at, kind, device_id, data, hash FROM events ORDER BY id').iterate() as Iterable<ChainRow & { hash: string }>);
  } finally {
    db.close();
  }
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`journal schema version ${current} is newer than this gateway knows (${MIGRATIONS.length}); upgrade the gateway`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    const migration = MIGRATIONS[v]!;
    db.transaction(() => {
      if (typeof migration === 'string') db.exec(migration);
      else migration(db);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
