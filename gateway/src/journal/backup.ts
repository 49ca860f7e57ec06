/**
 * Copies of the journal: an online backup through SQLite's backup API (consistent while the
 * gateway writes, from another process), and a restore that checks the copy's hash chain first,
 * refuses while the gateway runs and keeps the replaced journal aside.
 */
import Database from 'better-sqlite3';
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { headFileOf } from './head.js';
import { MIGRATIONS } from './migrations.js';
import { verifyJournalFile } from './verify.js';

export class BackupError extends Error {}

export interface BackupResult {
  file: string;
  events: number;
  schemaVersion: number;
}

/**
 * Copies the journal at `source` to `dest` while the gateway may be writing to it. All pages
 * are copied in one step, inside one read transaction: WAL readers do not block the writer, and
 * a step-by-step copy would start again at every write the gateway makes.
 */
export async function backupJournal(source: string, dest: string): Promise<BackupResult> {
  if (!existsSync(source)) throw new BackupError(`${source}: no journal there`);
  if (existsSync(dest)) throw new BackupError(`${dest}: already exists; give a new file name`);
  const db = new Database(source, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    await db.backup(dest, { progress: () => 0x7fffffff });
  } catch (err) {
    rmSync(dest, { force: true });
    throw new BackupError(`cannot copy ${source} to ${dest}: ${(err as Error).message}`);
  } finally {
    db.close();
  }
  return describe(dest);
}

export interface RestoreResult extends BackupResult {
  /** Where the replaced journal was moved, or null when there was none. */
  replaced: string | null;
}

/**
 * Replaces the journal of `dataDir` with the copy `file`, after checking its hash chain and
 * schema version; the replaced journal (with its WAL and its head) is moved aside, not deleted.
 */
export function restoreJournal(file: string, dataDir: string, now = new Date()): RestoreResult {
  if (!existsSync(file)) throw new BackupError(`${file}: no such file`);
  const copy = describe(file);
  const running = runningGateway(dataDir);
  if (running) throw new BackupError(`the gateway is running (pid ${running.pid}, started ${running.at}); stop it first (sudo systemctl stop ovn-gateway)`);
  const replaced = setJournalAside(dataDir, now);
  copyFileSync(file, join(dataDir, 'journal.sqlite'));
  return { ...copy, replaced };
}

/**
 * Moves the journal of `dataDir` (with its WAL and its head) aside, to
 * `journal.replaced.<time>.sqlite` beside it, so that the next start begins an empty one;
 * returns where it went, or null when there was none. The gateway must be stopped.
 */
export function setJournalAside(dataDir: string, now = new Date()): string | null {
  const running = runningGateway(dataDir);
  if (running) throw new BackupError(`the gateway is running (pid ${running.pid}, started ${running.at}); stop it first (sudo systemctl stop ovn-gateway)`);
  const target = join(dataDir, 'journal.sqlite');
  if (!existsSync(target)) return null;
  const aside = join(dataDir, `journal.replaced.${now.toISOString().replace(/[:.]/g, '-')}.sqlite`);
  // the WAL, its index and the chain's head go with the file they belong to
  for (const suffix of ['-wal', '-shm', '']) if (existsSync(target + suffix)) renameSync(target + suffix, aside + suffix);
  if (existsSync(headFileOf(target))) renameSync(headFileOf(target), headFileOf(aside));
  return aside;
}

/** Checks a copy: a journal this gateway can open, with its hash chain intact. */
function describe(file: string): BackupResult {
  let version: number;
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      version = db.pragma('user_version', { simple: true }) as number;
    } finally {
      db.close();
    }
  } catch (err) {
    throw new BackupError(`${file}: not a journal (${(err as Error).message})`);
  }
  if (version > MIGRATIONS.length) throw new BackupError(`${file}: schema version ${version} is newer than this gateway knows (${MIGRATIONS.length}); upgrade the gateway first`);
  let r;
  try {
    r = verifyJournalFile(file);
  } catch (err) {
    throw new BackupError((err as Error).message);
  }
  if (r.firstBreak) throw new BackupError(`${file}: hash chain broken at event ${r.firstBreak.id} (${r.firstBreak.problem}): ${r.firstBreak.detail}`);
  return { file, events: r.events, schemaVersion: version };
}

/**
 * The gateway using a data directory, if one runs: the journal's newest `gateway.started` has
 * no `gateway.stopped` after it and its process is alive (a crash leaves no `gateway.stopped`,
 * but its process is gone).
 */
export function runningGateway(dataDir: string): { pid: number; at: string } | null {
  const file = join(dataDir, 'journal.sqlite');
  if (!existsSync(file)) return null;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    // NOT INDEXED: read from the end of the table, even when an index is damaged (before a repair)
    const row = db.prepare(`SELECT kind, at, data FROM events NOT INDEXED WHERE kind IN ('gateway.started', 'gateway.stopped') ORDER BY id DESC LIMIT 1`).get() as
      | { kind: string; at: string; data: string }
      | undefined;
    if (!row || row.kind !== 'gateway.started') return null;
    const pid = (JSON.parse(row.data) as { pid?: unknown }).pid;
    return typeof pid === 'number' && isGatewayProcess(pid) ? { pid, at: row.at } : null;
  } finally {
    db.close();
  }
}

/** Whether `pid` is a live Node.js process (another user's process counts: kill answers EPERM). */
function isGatewayProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // a pid reused by something else after a crash is not the gateway
  try {
    return /node/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return true; // no /proc (not Linux): trust the signal
  }
}
