/**
 * Repairing a journal whose indexes are damaged (an SD card's bad page): every table is copied,
 * read from its own pages and never through an index, into a new file where SQLite builds every
 * index again; the new file must pass integrity_check and hold the same hash chain before it
 * takes the journal's place, and the damaged file is kept aside as it was. Damage in a table —
 * the events themselves above all — cannot be rebuilt from anything: repair then refuses and
 * says so; a backup is the way out.
 */
import Database from 'better-sqlite3';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runningGateway } from './backup.js';
import { checkJournal, indexesOnly, integrityLines, integrityOf, sound, verifyJournalFile } from './verify.js';

export interface RepairReport {
  /** Whether the journal is sound now (repaired, or had nothing to repair). */
  ok: boolean;
  lines: string[];
}

const RESTORE = 'restore the last good backup (ovn-gateway restore) and see docs/journal.md';

/** Repairs the journal of a data directory, with the gateway stopped. */
export async function repairJournal(dataDir: string, now = new Date()): Promise<RepairReport> {
  const file = join(dataDir, 'journal.sqlite');
  const refused = (...lines: string[]): RepairReport => ({ ok: false, lines: [...lines, `${file}: nothing was changed`] });
  if (!existsSync(file)) return refused(`${file}: no journal there`);

  // read-only, so before asking whether the gateway runs: the events may not be readable at all
  const { chain, integrity } = await checkJournal(file);
  if (sound(integrity)) return { ok: true, lines: [`${file}: integrity_check ok, nothing to repair`] };
  const found = integrityLines(file, integrity);
  if (!indexesOnly(integrity)) return refused(...found, `${file}: repair rebuilds indexes only, never a table: ${RESTORE}`);
  if ('unreadable' in chain) return refused(...found, `${file}: the events cannot be read (${chain.unreadable}): ${RESTORE}`);
  if (chain.firstBreak) {
    const b = chain.firstBreak;
    return refused(...found, `${file}: the events themselves are damaged: chain broken at event ${b.id} (${b.problem}): ${b.detail}; rebuilding indexes cannot mend that: ${RESTORE}`);
  }
  const running = runningGateway(dataDir);
  if (running) return refused(`${file}: the gateway is running (pid ${running.pid}, started ${running.at}); stop it first (sudo systemctl stop ovn-gateway)`);

  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const fresh = join(dataDir, `journal.repairing.${stamp}.sqlite`);
  const damaged = join(dataDir, `journal.damaged.${stamp}.sqlite`);
  let indexes: string[];
  try {
    indexes = rebuild(file, fresh);
    const again = await integrityOf(fresh);
    if (!sound(again)) throw new Error(`the rebuilt copy fails integrity_check: ${integrityLines(fresh, again).join('; ')}`);
    const copied = verifyJournalFile(fresh);
    if (copied.firstBreak || copied.events !== chain.events || copied.lastHash !== chain.lastHash) throw new Error(`the rebuilt copy does not hold the same chain (${copied.events} events, last hash ${copied.lastHash.slice(0, 16)}…)`);
  } catch (err) {
    rmSync(fresh, { force: true });
    return refused(...found, `${file}: cannot rebuild the indexes: ${(err as Error).message}`);
  }
  // the WAL and its index go with the damaged file they belong to
  for (const suffix of ['-wal', '-shm', '']) if (existsSync(file + suffix)) renameSync(file + suffix, damaged + suffix);
  renameSync(fresh, file);
  const damagedIndexes = [...new Set(integrity.problems.flatMap((p) => (p.object ? [p.object.name] : [])))];
  return {
    ok: true,
    lines: [
      ...found,
      `${file}: rebuilt every index (${indexes.length}) from the tables${damagedIndexes.length ? `, the damaged ${damagedIndexes.join(', ')} among them` : ''}; integrity_check ok, ${chain.events} events, chain intact`,
      `${file}: the damaged journal is kept at ${damaged}`,
    ],
  };
}

/**
 * Copies every table of `file` into the new file `fresh`, then creates the indexes there, in one
 * transaction; returns the indexes made. Rows are read NOT INDEXED in rowid order, so that SQLite
 * neither reads an index nor copies one page for page (its transfer optimisation skips an ordered
 * SELECT). The copy is left in rollback mode: the journal's next opening puts it in WAL mode, and
 * the read-only checks of it leave no WAL files behind.
 */
function rebuild(file: string, fresh: string): string[] {
  const source = new Database(file, { readonly: true, fileMustExist: true });
  const target = new Database(fresh);
  try {
    const schema = source.prepare(`SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid`).all() as { type: string; name: string; sql: string }[];
    const tables = schema.filter((o) => o.type === 'table');
    const quoted = (name: string) => `"${name.replace(/"/g, '""')}"`;
    target.transaction(() => {
      for (const t of tables) target.exec(t.sql);
      for (const t of tables) {
        const rows = source.prepare(`SELECT * FROM ${quoted(t.name)} NOT INDEXED ORDER BY rowid`).raw().safeIntegers();
        const insert = target.prepare(`INSERT INTO ${quoted(t.name)} VALUES (${rows.columns().map(() => '?').join(', ')})`);
        for (const row of rows.iterate() as IterableIterator<unknown[]>) insert.run(row);
      }
      // AUTOINCREMENT counters: a number once used is never given again
      if (source.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'`).get()) {
        target.exec('DELETE FROM sqlite_sequence');
        const insert = target.prepare('INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)');
        for (const row of source.prepare('SELECT name, seq FROM sqlite_sequence').raw().safeIntegers().iterate() as IterableIterator<unknown[]>) insert.run(row);
      }
      for (const o of schema) if (o.type !== 'table') target.exec(o.sql);
      target.pragma(`user_version = ${Number(source.pragma('user_version', { simple: true }))}`);
    })();
    return target.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY rowid`).pluck().all() as string[];
  } finally {
    source.close();
    target.close();
  }
}
