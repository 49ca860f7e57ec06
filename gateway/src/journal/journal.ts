/**
 * The journal: an append-only record of what happened, in SQLite (WAL) in the data
 * directory. Migrations run forward at open; `PRAGMA user_version` holds the schema version.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
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
  afterId?: number;
  limit?: number;
}

export class Journal {
  readonly db: Database.Database;
  private readonly insert: Database.Statement<[string, string, string | null, string]>;

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
    this.insert = this.db.prepare('INSERT INTO events (at, kind, device_id, data) VALUES (?, ?, ?, ?)');
  }

  static open(dataDir: string, now: () => Date = () => new Date()): Journal {
    mkdirSync(dataDir, { recursive: true });
    return new Journal(join(dataDir, 'journal.sqlite'), now);
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  record(kind: string, deviceId: string | null, data: Record<string, unknown> = {}): number {
    return Number(this.insert.run(this.now().toISOString(), kind, deviceId, JSON.stringify(data)).lastInsertRowid);
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
    filter('id > ?', q.afterId);
    const sql = `SELECT id, at, kind, device_id AS deviceId, data FROM events ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, q.limit ?? 1000) as (Omit<JournalEvent, 'data'> & { data: string })[];
    return rows.map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`journal schema version ${current} is newer than this gateway knows (${MIGRATIONS.length}); upgrade the gateway`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
