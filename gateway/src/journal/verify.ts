/**
 * Checking a journal file, read-only (safe while the gateway runs): its hash chain, the chain's
 * end against the head file beside it, and SQLite's own check of the file (`integrity_check`, or
 * the faster `quick_check`, which leaves out whether the indexes match the tables), run in a
 * worker thread while the chain is walked.
 *
 * The chain is walked with each event's canonical encoding built by SQLite (`json_array`, which
 * quotes text as JSON.stringify does), which is three times faster than reading the columns
 * into JavaScript; from the first event that does not match, the walk goes on with the encoding
 * of chain.ts, the reference, which names what is wrong.
 */
import Database from 'better-sqlite3';
import { hash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { basename } from 'node:path';
import { CHAIN_FORMATS, GENESIS, headMismatch, verifyChain, type ChainFormat, type ChainHead, type ChainRow, type FormatSegment, type VerifyResult } from './chain.js';
import { headFileOf, readHead } from './head.js';

/** A loss the journal recorded when it found that its chain no longer reached its head. */
export interface RecordedMismatch {
  id: number;
  at: string;
  problem: string;
}

export interface ChainCheck extends VerifyResult {
  /** The head beside the journal, or null when there is none. */
  head: ChainHead | null;
  mismatches: RecordedMismatch[];
}

/**
 * Walks the hash chain of a journal file and compares its end with the head beside it; names
 * the first event that was altered or removed, or the end that was cut off or rewritten.
 */
export function verifyJournalFile(file: string): ChainCheck {
  // Read before the chain: a head names events committed before it was written.
  const head = readHead(file);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version < 2) throw new Error(`${file}: schema version ${version} has no hash chain; start the gateway once to upgrade it`);
    // one read transaction: the head check sees the chain the walk saw
    return db.transaction((): ChainCheck => {
      const { result, mismatchIds } = walk(db, formatsOf(db));
      let firstBreak = result.firstBreak;
      if (head && !firstBreak) {
        // intact: the events are 1…events
        const lastId = result.events;
        const hashAt = (db.prepare('SELECT hash FROM events WHERE id = ?').pluck().get(head.id) as string | undefined) ?? null;
        const detail = headMismatch(head, lastId ? { id: lastId, hash: result.lastHash } : null, hashAt);
        if (detail) firstBreak = head.id > lastId ? { id: lastId + 1, problem: 'removed', detail } : { id: head.id, problem: 'rewritten', detail };
      }
      return { ...result, firstBreak, head, mismatches: mismatchesOf(db, mismatchIds) };
    })();
  } finally {
    db.close();
  }
}

/** The chain formats of the journal (format 1 throughout for a journal from before they were kept). */
function formatsOf(db: Database.Database): FormatSegment[] {
  const kept = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chain_formats'`).get();
  return kept ? (db.prepare('SELECT from_id AS "from", format FROM chain_formats ORDER BY from_id').all() as FormatSegment[]) : [];
}

/** The chain walk: SQLite encodes each event; from the first that does not match, chain.ts does. */
function walk(db: Database.Database, formats: readonly FormatSegment[]): { result: VerifyResult; mismatchIds: number[] } {
  const encoding = (format: ChainFormat) => `json_array(${CHAIN_FORMATS[format].join(', ')})`;
  const encoded = formats.reduceRight((otherwise, s) => `CASE WHEN id >= ${Number(s.from)} THEN ${encoding(s.format)} ELSE ${otherwise} END`, encoding(1));
  const rows = db.prepare(`SELECT id, hash, ${encoded}, kind = 'journal.head-mismatch' FROM events ORDER BY id`).raw();
  const mismatchIds: number[] = [];
  let prev = GENESIS;
  let expected = 1;
  let suspect: number | null = null;
  try {
    for (const [id, stored, text, mismatch] of rows.iterate() as IterableIterator<[number, string, string, number]>) {
      if (id !== expected || hash('sha256', `${prev}\n${text}`, 'hex') !== stored) {
        suspect = id;
        break;
      }
      if (mismatch) mismatchIds.push(id);
      prev = stored;
      expected++;
    }
  } catch (err) {
    // a value SQLite cannot encode (bytes where text was): chain.ts names the event
    if ((err as { code?: string }).code !== 'SQLITE_ERROR') throw err;
    suspect = expected;
  }
  const intact = expected - 1;
  if (suspect === null) return { result: { events: intact, intact, lastHash: prev, firstBreak: null }, mismatchIds };
  const rest = db.prepare(`SELECT id, at, kind, device_id, data, clock_synced, hash FROM events WHERE id >= ? ORDER BY id`).iterate(Math.min(suspect, expected)) as Iterable<ChainRow & { hash: string }>;
  const result = verifyChain(rest, formats, { from: expected, prev });
  return { result: { ...result, events: intact + result.events, intact: intact + result.intact }, mismatchIds };
}

function mismatchesOf(db: Database.Database, ids: readonly number[]): RecordedMismatch[] {
  const get = db.prepare('SELECT id, at, data FROM events WHERE id = ?');
  return ids.map((id) => {
    const row = get.get(id) as { id: number; at: string; data: string };
    return { id: row.id, at: row.at, problem: String((JSON.parse(row.data) as { problem?: unknown }).problem) };
  });
}

/** A problem SQLite's check found, with the table or index it is in (null: the file, such as pages no tree uses). */
export interface IntegrityProblem {
  object: { type: 'table' | 'index'; name: string } | null;
  message: string;
}

export interface IntegrityReport {
  /** The check whose findings these are. */
  check: 'integrity_check' | 'quick_check';
  problems: IntegrityProblem[];
  /** Checks that stopped on damage they could not get past, with SQLite's words. */
  stopped: { check: string; error: string }[];
  /** False when no check could read the file through: nothing is known of what they did not reach. */
  complete: boolean;
}

/**
 * SQLite's check of a journal file, in a worker thread so that it runs beside the chain walk. A
 * full check that stops on damage it cannot get past is followed by a quick one, which reads
 * less through the indexes and may still say where the damage is.
 */
export async function integrityOf(file: string, quick = false): Promise<IntegrityReport> {
  const checks = quick ? (['quick_check'] as const) : (['integrity_check', 'quick_check'] as const);
  const stopped: IntegrityReport['stopped'] = [];
  for (const check of checks) {
    const r = await runCheck(file, check);
    if ('error' in r) {
      stopped.push({ check, error: r.error });
      continue;
    }
    if (r.lines.length === 0) return { check, problems: [], stopped, complete: true };
    const { schema, problem } = schemaOf(file);
    const problems = r.lines.map((message) => ({ object: objectOf(message, schema), message }));
    return { check, problems: problem ? [problem, ...problems] : problems, stopped, complete: true };
  }
  return { check: checks[checks.length - 1]!, problems: [], stopped, complete: false };
}

const sqlitePath = createRequire(import.meta.url).resolve('better-sqlite3');
// Plain JavaScript, so that it runs the same from the sources and from the compiled gateway.
const CHECK_WORKER = `
const { parentPort, workerData: { sqlite, file, check } } = require('node:worker_threads');
const Database = require(sqlite);
let db;
try {
  db = new Database(file, { readonly: true, fileMustExist: true });
  parentPort.postMessage({ lines: db.pragma(check).map((row) => Object.values(row)[0]) });
} catch (err) {
  parentPort.postMessage({ error: err.message });
} finally {
  db?.close();
}`;

function runCheck(file: string, check: 'integrity_check' | 'quick_check'): Promise<{ lines: string[] } | { error: string }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(CHECK_WORKER, { eval: true, workerData: { sqlite: sqlitePath, file, check } });
    worker.once('message', (r: { lines: string[] } | { error: string }) => {
      // one row may hold several lines, the first under a "*** in database main ***" title
      resolve('lines' in r ? { lines: r.lines.flatMap((l) => l.split('\n')).filter((l) => l !== 'ok' && !l.startsWith('***')) } : r);
    });
    worker.once('error', reject);
    // after a message, this rejects nothing
    worker.once('exit', (code) => reject(new Error(`${file}: the ${check} worker stopped (exit code ${code}) without an answer`)));
  });
}

type Schema = Map<number | string, { type: 'table' | 'index'; name: string }>;

/** The tables and indexes of a journal file, by root page and by name; or why they cannot be read. */
function schemaOf(file: string): { schema: Schema; problem: IntegrityProblem | null } {
  const master = { type: 'table', name: 'sqlite_master' } as const;
  const schema: Schema = new Map([[1, master]]);
  let db: Database.Database | null = null;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const rows = db.prepare(`SELECT type, name, rootpage FROM sqlite_master WHERE type IN ('table', 'index')`).all() as { type: 'table' | 'index'; name: string; rootpage: number }[];
    for (const r of rows) schema.set(r.rootpage, { type: r.type, name: r.name }).set(r.name, { type: r.type, name: r.name });
    return { schema, problem: null };
  } catch (err) {
    if (!isDamage(err)) throw err;
    return { schema, problem: { object: master, message: `the list of tables and indexes cannot be read: ${(err as Error).message}` } };
  } finally {
    db?.close();
  }
}

/** The table or index a line of SQLite's check is about, when it says. */
function objectOf(message: string, schema: Schema): IntegrityProblem['object'] {
  const tree = /^Tree (\d+) page/.exec(message);
  if (tree) return schema.get(Number(tree[1])) ?? null;
  const named = / (?:in|from) index (\S+)$/.exec(message) ?? /^(?:NULL|NaN) value in ([^.]+)\./.exec(message) ?? /^CHECK constraint failed in (\S+)$/.exec(message);
  return named ? (schema.get(named[1]!) ?? null) : null;
}

export interface JournalCheck {
  /** The chain and its head, or what kept them from being read. */
  chain: ChainCheck | { unreadable: string };
  integrity: IntegrityReport;
}

/** The chain walk and SQLite's check of a journal file, side by side. */
export async function checkJournal(file: string, opts: { quick?: boolean } = {}): Promise<JournalCheck> {
  const integrity = integrityOf(file, opts.quick);
  let chain: JournalCheck['chain'];
  try {
    chain = verifyJournalFile(file);
  } catch (err) {
    if (!isDamage(err)) throw err;
    chain = { unreadable: (err as Error).message };
  }
  return { chain, integrity: await integrity };
}

/** Whether an error is SQLite finding the file damaged. */
export function isDamage(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
}

/** What a person should do when a command fails on a damaged journal file; null when `err` is not such damage. */
export function damageAdvice(file: string, err: unknown): string | null {
  if (!isDamage(err)) return null;
  return `${file} is damaged (${(err as Error).message}): ovn-gateway verify says what is damaged; damaged indexes are rebuilt by ovn-gateway repair (with the gateway stopped)`;
}

/** Whether SQLite's check found nothing wrong. */
export function sound(integrity: IntegrityReport): boolean {
  return integrity.problems.length === 0 && integrity.stopped.length === 0;
}

/** Whether every problem SQLite found is in an index or outside any table: what repair rebuilds. */
export function indexesOnly(integrity: IntegrityReport): boolean {
  return integrity.complete && integrity.problems.every((p) => p.object?.type !== 'table');
}

/** What SQLite's check found, for a person: a line per damaged table or index, tables first. */
export function integrityLines(file: string, integrity: IntegrityReport): string[] {
  if (sound(integrity)) return [`${file}: ${integrity.check} ok`];
  const lines = integrity.stopped.map((s) => `${file}: ${s.check} stopped on damage it cannot get past (${s.error})`);
  const rank = (p: IntegrityProblem) => (p.object === null ? 2 : p.object.type === 'table' ? 0 : 1);
  const byObject = new Map<string, string[]>();
  for (const p of [...integrity.problems].sort((a, b) => rank(a) - rank(b))) {
    const where = p.object ? `${p.object.type} ${p.object.name} damaged` : 'damage outside any table or index';
    byObject.set(where, [...(byObject.get(where) ?? []), p.message]);
  }
  for (const [where, messages] of byObject) {
    const shown = messages.slice(0, 3).join('; ') + (messages.length > 3 ? `; and ${messages.length - 3} more` : '');
    lines.push(`${file}: ${integrity.check} finds ${where}: ${shown}`);
  }
  return lines;
}

/** A check for a person: whether all is well, and what to say (each line to print on its own). */
export function describeCheck(file: string, check: JournalCheck): { ok: boolean; lines: string[] } {
  const lines: string[] = [];
  const { chain, integrity } = check;
  let eventsIntact = false;
  if ('unreadable' in chain) {
    lines.push(`${file}: the events cannot be read (${chain.unreadable})`);
  } else if (chain.firstBreak) {
    const b = chain.firstBreak;
    lines.push(`${file}: chain broken at event ${b.id} (${b.problem}): ${b.detail}` + (b.problem === 'rewritten' ? '; the chain is consistent in itself, so its hashes were recomputed: compare with a backup' : `; ${chain.intact} events before it are intact`));
  } else {
    eventsIntact = true;
    const head = chain.head ? 'its head agrees' : `no head file (${basename(headFileOf(file))}): an end cut off the chain cannot be seen until the gateway writes one`;
    lines.push(`${file}: ${chain.events} events, chain intact (last hash ${chain.lastHash.slice(0, 16)}…), ${head}`);
  }
  if (!('unreadable' in chain)) {
    for (const m of chain.mismatches) lines.push(`${file}: note: event ${m.id} (${m.at}) records that the chain no longer reached its head: ${m.problem}`);
  }
  lines.push(...integrityLines(file, integrity));
  if (!sound(integrity)) {
    lines.push(
      `${file}: ` +
        (eventsIntact && indexesOnly(integrity)
          ? 'the events are intact and only indexes are damaged: stop the gateway and run ovn-gateway repair, which rebuilds them from the tables'
          : 'the damage is not only in indexes: ovn-gateway repair cannot rebuild it; restore the last good backup (ovn-gateway restore) and see docs/journal.md'),
    );
  }
  return { ok: eventsIntact && sound(integrity), lines };
}
