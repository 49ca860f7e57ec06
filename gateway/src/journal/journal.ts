/**
 * The journal: an append-only record of what happened, in SQLite (WAL) in the data
 * directory. Migrations run forward at open, after a copy of the journal is kept beside it;
 * `PRAGMA user_version` holds the schema version.
 *
 * When the storage refuses a write (a full disk, a read-only or failing SD card), events and
 * durable transactions are kept in memory, in order, and written when it accepts writes again
 * (`flushHeld`); listeners (`onStorage`) hear of both.
 *
 * Two kinds of listener hear the events appended: a `tap` inside the appending transaction (what
 * it writes commits or rolls back with the event: the ledger outbox), and an `afterCommit`
 * listener once the outermost transaction has committed (what tells the world: it never hears an
 * event that was rolled back, held, or written twice).
 *
 * The chain's end is anchored in a head file beside the journal (see head.ts).
 */
import Database from 'better-sqlite3';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CHAIN_FORMAT, chainHash, GENESIS, headMismatch, type ChainHead, type ChainRow } from './chain.js';
import { HEAD_EVERY_MS, HeadError, readHead, writeHead } from './head.js';
import { MIGRATIONS } from './migrations.js';

export interface JournalEvent {
  id: number;
  at: string;
  kind: string;
  deviceId: string | null;
  data: Record<string, unknown>;
}

/** Why the storage refuses writes: what a person must fix. */
export type StorageProblem = 'full' | 'read-only' | 'io-error';

/** The storage problem behind a failed write, or null when the failure has another cause. */
export function storageProblemOf(err: unknown): StorageProblem | null {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return null;
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') return 'full';
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS') return 'read-only';
  if (code.startsWith('SQLITE_IOERR') || code === 'EIO') return 'io-error';
  return null;
}

/** What a storage problem means for a person, and what to do. */
export const STORAGE_PROBLEM_TEXT: Record<StorageProblem, string> = {
  full: 'the disk is full: free space on it (old backups, logs) or move gateway.dataDir to a larger disk (under systemd, allow it with ReadWritePaths=)',
  'read-only': 'the file system is read-only: the SD card may be failing; copy the journal elsewhere (ovn-gateway backup) and replace the card (or, under systemd, gateway.dataDir is outside the unit\'s ReadWritePaths)',
  'io-error': 'the storage fails to write: the SD card may be failing; copy the journal elsewhere (ovn-gateway backup) and replace the card',
};

/** Why a directory cannot be written to, when the storage is the cause. */
function writeProblemOf(dir: string): StorageProblem | null {
  try {
    accessSync(dir, constants.W_OK);
    return null;
  } catch (err) {
    return storageProblemOf(err);
  }
}

/** Adds a listener to a list; returns what removes it. */
function listen<L>(list: L[], listener: L): () => void {
  list.push(listener);
  return () => {
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
  };
}

/** An event as appended, with its place in the hash chain. */
export type AppendedEvent = JournalEvent & { hash: string };

/** A held write that failed for another reason than the storage: it cannot be written and was set aside. */
export interface UnwritableWrite {
  /** What was held: an event of a kind, or a transaction. */
  what: string;
  /** The events it was recording when it failed, with their data, for a person to recover them. */
  events: { kind: string; deviceId: string | null; data: Record<string, unknown> }[];
  err: Error;
}

/** Writes kept in memory at most while the storage refuses them; beyond, the write fails. */
export const MAX_HELD_WRITES = 50_000;

export type Migration = string | ((db: Database.Database) => void);

/** A migration at open: from and to which schema version, and where the copy from before it is. */
export interface MigrationDone {
  from: number;
  to: number;
  backup: string;
}

/** A migration that failed: the journal was left as it was. */
export class MigrationError extends Error {}

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
  /** Whether the wall clock is synchronised, stored beside every event (`clock_synced`); the gateway sets its ClockStatus. */
  clock: { readonly synced: boolean | null } = { synced: null };
  /** Set when this open migrated an existing journal to a newer schema. */
  readonly migrated: MigrationDone | null;
  private readonly insert: Database.Statement<[number, string, string, string | null, string, string, number | null]>;
  private readonly last: Database.Statement<[], ChainHead>;
  private readonly hashAt: Database.Statement<[number], string>;
  /** The head last read or written: the chain must still reach it. */
  private head: ChainHead | null = null;
  private headTimer: NodeJS.Timeout | null = null;
  private headWrittenAt = -Infinity;
  private readonly append: (kind: string, deviceId: string | null, data: string, at: string) => number;
  private readonly latestStmt: Database.Statement<[string, string | null]>;
  private readonly taps: ((e: AppendedEvent) => void)[] = [];
  private readonly committedListeners: ((e: AppendedEvent) => void)[] = [];
  /** Events appended in the open transaction, for the after-commit listeners. */
  private readonly uncommitted: AppendedEvent[] = [];
  private readonly held: { what: string; write: () => void }[] = [];
  /** While a held write is replayed: the events it records, to name them if it fails. */
  private replaying: UnwritableWrite['events'] | null = null;
  private readonly unwritableListeners: ((w: UnwritableWrite) => void)[] = [];
  private readonly statements = new Map<string, Database.Statement>();
  private readonly storageListeners: ((problem: StorageProblem | null, err: Error | null) => void)[] = [];

  private constructor(
    readonly file: string,
    private readonly now: () => Date,
    migrations: readonly Migration[],
  ) {
    this.db = new Database(file);
    try {
      this.db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode keeps the database consistent after a power cut and spares the SD card
      // an fsync per meter reading; the last commits before a cut may be lost, never corrupted.
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      this.migrated = migrate(this.db, file, migrations, now());
    } catch (err) {
      this.db.close();
      const problem = storageProblemOf(err) ?? ((err as { code?: string }).code === 'SQLITE_CANTOPEN' ? writeProblemOf(dirname(file)) : null);
      if (problem) throw new Error(`${file}: cannot open the journal, ${STORAGE_PROBLEM_TEXT[problem]} (${(err as Error).message})`);
      throw err;
    }
    this.insert = this.db.prepare('INSERT INTO events (id, at, kind, device_id, data, hash, clock_synced) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.last = this.db.prepare('SELECT id, hash FROM events ORDER BY id DESC LIMIT 1');
    this.hashAt = this.db.prepare<[number], string>('SELECT hash FROM events WHERE id = ?').pluck();
    this.latestStmt = this.db.prepare('SELECT id, at, kind, device_id AS deviceId, data FROM events WHERE kind = ? AND device_id IS ? ORDER BY id DESC LIMIT 1');
    this.watchTransactions();
    // Read the chain's end and append in one transaction, so that no other writer can slip in between.
    this.append = this.db.transaction((kind: string, deviceId: string | null, data: string, at: string) => {
      this.replaying?.push({ kind, deviceId, data: JSON.parse(data) as Record<string, unknown> });
      const last = this.last.get();
      const synced = this.clock.synced;
      const row: ChainRow = { id: (last?.id ?? 0) + 1, at, kind, device_id: deviceId, data, clock_synced: synced === null ? null : Number(synced) };
      const hash = chainHash(last?.hash ?? GENESIS, row, CHAIN_FORMAT);
      this.insert.run(row.id, row.at, row.kind, row.device_id, row.data, hash, row.clock_synced);
      this.headDue();
      if (this.taps.length || this.committedListeners.length) {
        const e: AppendedEvent = { id: row.id, at: row.at, kind, deviceId, data: JSON.parse(data) as Record<string, unknown>, hash };
        for (const tap of this.taps) tap(e);
        if (this.committedListeners.length) this.uncommitted.push(e);
      }
      return row.id;
    });
    let unreadable: string | null = null;
    try {
      this.head = readHead(file);
    } catch (err) {
      // edited by someone; a file the storage cannot read is no evidence of anything: the head is then unknown
      if (err instanceof HeadError) unreadable = err.message;
    }
    this.anchorHead(unreadable);
  }

  /** Anchors the chain's end in the head file soon: at most every HEAD_EVERY_MS, after the commit. */
  private headDue(): void {
    if (this.headTimer) return;
    const anchor = () => {
      try {
        this.anchorHead();
      } catch (err) {
        // a failing storage, reported by the storage monitor; the next commit tries again
        if (storageProblemOf(err) === null) throw err;
      }
    };
    this.headTimer = setTimeout(anchor, Math.max(0, this.headWrittenAt + HEAD_EVERY_MS - performance.now()));
    this.headTimer.unref();
  }

  /**
   * Writes the chain's end as the head, after checking that the chain still reaches the head
   * last read or written (`problem`: why the head on disk could not be read): when it does not,
   * events were lost (a power cut, or someone removed them), and an event records it before the
   * head moves on — otherwise the next head would hide the loss.
   */
  private anchorHead(problem: string | null = null): void {
    let last = this.last.get() ?? null;
    problem ??= this.head && headMismatch(this.head, last, this.hashAt.get(this.head.id) ?? null);
    if (problem) {
      this.record('journal.head-mismatch', null, { head: this.head, end: last, problem });
      // recorded (or held with the events): the head need not be checked again
      this.head = null;
      last = this.last.get() ?? null;
    }
    if (last && (last.id !== this.head?.id || last.hash !== this.head.hash)) {
      try {
        writeHead(this.file, last);
        this.head = last;
        this.headWrittenAt = performance.now();
      } catch {
        // the storage refuses writes (the storage monitor reports it): the next commit tries again
      }
    }
    if (this.headTimer) clearTimeout(this.headTimer);
    this.headTimer = null;
  }

  /**
   * Makes every transaction on the journal's connection (`db.transaction`, nested ones included)
   * keep the events it appends for the after-commit listeners: they hear them once the outermost
   * transaction commits; a rolled-back one, or a rolled-back nested one, drops its own.
   */
  private watchTransactions(): void {
    const make = this.db.transaction.bind(this.db);
    const watched = <A extends unknown[], R>(run: (...args: A) => R) =>
      (...args: A): R => {
        const mark = this.uncommitted.length;
        let result: R;
        try {
          result = run(...args);
        } catch (err) {
          this.uncommitted.length = this.db.inTransaction ? mark : 0;
          throw err;
        }
        if (!this.db.inTransaction) this.deliverCommitted();
        return result;
      };
    this.db.transaction = ((fn: (...args: unknown[]) => unknown) => {
      const t = make(fn);
      const run = watched(t);
      return Object.assign(run, { default: run, deferred: watched(t.deferred), immediate: watched(t.immediate), exclusive: watched(t.exclusive), database: this.db });
    }) as Database.Database['transaction'];
  }

  /**
   * Hands the committed events to the after-commit listeners. One that throws does not keep the
   * others from hearing the event, nor make its writer believe it was not written: its error is
   * thrown on its own, a moment later.
   */
  private deliverCommitted(): void {
    for (const e of this.uncommitted.splice(0)) {
      for (const l of this.committedListeners) {
        try {
          l(e);
        } catch (err) {
          queueMicrotask(() => {
            throw err;
          });
        }
      }
    }
  }

  /**
   * The statement for this SQL, prepared once for the journal's life: for a query built from
   * its filters (a statement, a report), preparing costs more than running it through an index.
   */
  prepared(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) this.statements.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  /** Opens (or makes) the journal of a data directory; `migrations` is for tests of upgrades. */
  static open(dataDir: string, now: () => Date = () => new Date(), migrations: readonly Migration[] = MIGRATIONS): Journal {
    mkdirSync(dataDir, { recursive: true });
    return new Journal(join(dataDir, 'journal.sqlite'), now, migrations);
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /**
   * Calls `tap` with every event appended from now on, inside the transaction that appends
   * it: what it writes (the ledger outbox) commits or rolls back with the event. It also hears
   * events that are then rolled back (a refused write, held and appended again later): what
   * tells the world listens `afterCommit`.
   */
  tap(tap: (e: AppendedEvent) => void): void {
    this.taps.push(tap);
  }

  /**
   * Calls `listener` with every event appended from now on, once the outermost transaction that
   * appends it has committed, in order; never with an event that was rolled back. For what
   * publishes outward (event streams, MQTT). Returns what removes it.
   */
  afterCommit(listener: (e: AppendedEvent) => void): () => void {
    return listen(this.committedListeners, listener);
  }

  /**
   * Appends an event to the chain; returns its id, or 0 when the storage refuses writes and the
   * event is held in memory until it accepts them again (outside a transaction only: inside one,
   * the error rolls the transaction back).
   */
  record(kind: string, deviceId: string | null, data: Record<string, unknown> = {}): number {
    const json = JSON.stringify(data);
    const at = this.now().toISOString();
    if (this.db.inTransaction) return this.append(kind, deviceId, json, at);
    return this.orHold(`the ${kind} event`, () => this.append(kind, deviceId, json, at)) ?? 0;
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

  /**
   * `durably`, or, when the storage refuses writes, the transaction is held in memory and run
   * in order when it accepts them again. Returns whether it ran now. For what must not be lost
   * and can be written late: a closed session (its events then carry the time they were written;
   * their data carries when it happened).
   */
  durablyOrLater(fn: () => void): boolean {
    return this.orHold('a transaction', () => this.durably(fn)) !== null;
  }

  /** Writes held in memory while the storage refused them. */
  get heldWrites(): number {
    return this.held.length;
  }

  /**
   * Writes what was held, in order, as far as the storage accepts; returns whether everything
   * is written. Listeners hear `null` when the last held write is. A held write that fails for
   * another reason than the storage would fail again at every try and keep the rest behind it:
   * it is set aside, `onUnwritable` listeners hear what it was, and the next one is written.
   */
  flushHeld(): boolean {
    while (this.held.length) {
      const { what, write } = this.held[0]!;
      const events: UnwritableWrite['events'] = (this.replaying = []);
      try {
        write();
      } catch (err) {
        if (storageProblemOf(err) !== null) return false;
        for (const l of this.unwritableListeners) l({ what, events, err: err as Error });
      } finally {
        this.replaying = null;
      }
      this.held.shift();
      if (this.held.length === 0) for (const l of this.storageListeners) l(null, null);
    }
    return true;
  }

  /** Calls `listener` with every held write set aside because it cannot be written; returns what removes it. */
  onUnwritable(listener: (w: UnwritableWrite) => void): () => void {
    return listen(this.unwritableListeners, listener);
  }

  /**
   * Calls `listener` with the problem when the storage refuses a write, and with null once what
   * was held is written; returns what removes it.
   */
  onStorage(listener: (problem: StorageProblem | null, err: Error | null) => void): () => void {
    return listen(this.storageListeners, listener);
  }

  /** Runs `write` now, unless writes are held; on a storage problem holds it. Returns its result, or null when held. */
  private orHold<T>(what: string, write: () => T): T | null {
    let refused: { problem: StorageProblem; err: Error } | null = null;
    if (this.held.length === 0) {
      try {
        return write();
      } catch (err) {
        const problem = storageProblemOf(err);
        if (problem === null) throw err;
        refused = { problem, err: err as Error };
      }
    }
    if (this.held.length >= MAX_HELD_WRITES) throw new Error(`${this.file}: the storage has refused writes for too long (${this.held.length} held in memory); free space or replace the SD card, then restart`);
    this.held.push({ what, write: () => void write() });
    // after holding it: what the listeners write goes behind it
    if (refused) for (const l of this.storageListeners) l(refused.problem, refused.err);
    return null;
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
    const rows = this.prepared(sql).all(...args, q.limit ?? 1000) as (Omit<JournalEvent, 'data'> & { data: string })[];
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
    if (!this.db.open) return;
    try {
      this.anchorHead();
    } finally {
      this.db.close();
    }
  }
}

/**
 * Runs the migrations the journal has not had, all in one transaction, after a consistent copy
 * of it is kept beside it (named with its version): a failed migration leaves it as it was.
 */
function migrate(db: Database.Database, file: string, migrations: readonly Migration[], now: Date): MigrationDone | null {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) {
    throw new MigrationError(`${file}: journal schema version ${current} is newer than this gateway knows (${migrations.length}); upgrade the gateway`);
  }
  if (current === migrations.length) return null;
  let backup = '';
  if (current > 0) {
    backup = file.replace(/\.sqlite$/, '') + `.v${current}.${now.toISOString().replace(/[:.]/g, '-')}.sqlite`;
    if (existsSync(backup)) throw new MigrationError(`${file}: ${backup} is in the way of the copy kept before migrating; move it`);
    try {
      db.prepare('VACUUM INTO ?').run(backup);
    } catch (err) {
      throw new MigrationError(`${file}: cannot keep a copy before migrating from schema version ${current} (${(err as Error).message} at ${backup}); nothing was changed`);
    }
  }
  let v = current;
  try {
    db.transaction(() => {
      for (; v < migrations.length; v++) {
        const migration = migrations[v]!;
        if (typeof migration === 'string') db.exec(migration);
        else migration(db);
      }
      db.pragma(`user_version = ${migrations.length}`);
    })();
  } catch (err) {
    throw new MigrationError(
      `${file}: migrating the journal from schema version ${current} failed at version ${v + 1} (${(err as Error).message}); the journal was left at version ${current}` +
        (backup ? `, and a copy from before is at ${backup}` : ''),
    );
  }
  return current > 0 ? { from: current, to: migrations.length, backup } : null;
}
