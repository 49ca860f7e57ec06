/**
 * Upgrades: a journal made by the previous schema version is copied aside, then migrated in one
 * transaction; a migration that fails leaves the journal as it was, and says why.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { chainHash, GENESIS } from '../gateway/src/journal/chain.js';
import { Journal, MigrationError, type Migration } from '../gateway/src/journal/journal.js';
import { MIGRATIONS } from '../gateway/src/journal/migrations.js';
import { verifyJournalFile } from '../gateway/src/journal/verify.js';
import { freePort, startTestGateway, tempDir } from './helpers.js';

const cli = join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js');
const PREVIOUS = MIGRATIONS.length - 1;

/** A journal as the previous version of the gateway left it: its schema, events on a valid chain, an affiliate. */
function previousJournal(events = 20): { dir: string; file: string } {
  const dir = tempDir('migrate');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'journal.sqlite');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  for (const m of MIGRATIONS.slice(0, PREVIOUS)) {
    if (typeof m === 'string') db.exec(m);
    else m(db);
  }
  db.pragma(`user_version = ${PREVIOUS}`);
  const insert = db.prepare('INSERT INTO events (id, at, kind, device_id, data, hash) VALUES (?, ?, ?, ?, ?, ?)');
  let prev = GENESIS;
  for (let id = 1; id <= events; id++) {
    const row = { id, at: new Date(Date.UTC(2026, 10, 1, 0, 0, id)).toISOString(), kind: 'device.connected', device_id: 'n1', data: JSON.stringify({ id }), clock_synced: null };
    // the previous version chained with format 2 (every column)
    prev = chainHash(prev, row, 2);
    insert.run(row.id, row.at, row.kind, row.device_id, row.data, prev);
  }
  db.prepare(`INSERT INTO affiliates (id, name, status, updated_at) VALUES ('ada', 'Ada', 'active', '2026-11-01T00:00:00.000Z')`).run();
  db.close();
  return { dir, file };
}

const versionOf = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
};

describe('journal migrations', () => {
  it('upgrades a journal of the previous schema version after keeping a copy of it named with its version', () => {
    const { dir, file } = previousJournal(20);
    const journal = Journal.open(dir, () => new Date('2026-11-25T01:02:03.456Z'));
    expect(journal.schemaVersion).toBe(MIGRATIONS.length);
    expect(journal.migrated).toEqual({ from: PREVIOUS, to: MIGRATIONS.length, backup: join(dir, `journal.v${PREVIOUS}.2026-11-25T01-02-03-456Z.sqlite`) });
    journal.record('gateway.started', null, {});
    expect(journal.events().length).toBe(21);
    journal.close();
    expect(verifyJournalFile(file)).toMatchObject({ events: 21, firstBreak: null });

    const backup = journal.migrated!.backup;
    expect(versionOf(backup)).toBe(PREVIOUS);
    expect(verifyJournalFile(backup)).toMatchObject({ events: 20, firstBreak: null });
    // opening again migrates nothing
    const again = Journal.open(dir);
    expect(again.migrated).toBeNull();
    again.close();
  });

  it('a failing migration leaves the journal untouched: every pending migration rolls back together', () => {
    const { dir, file } = journalAtCurrentVersion();
    const failing: Migration[] = [...MIGRATIONS, 'CREATE TABLE added_first (a INTEGER);', 'INSERT INTO no_such_table VALUES (1);'];
    let error: unknown;
    try {
      Journal.open(dir, () => new Date('2026-11-25T00:00:00Z'), failing);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MigrationError);
    const v = MIGRATIONS.length;
    expect((error as Error).message).toMatch(
      new RegExp(`journal\\.sqlite: migrating the journal from schema version ${v} failed at version ${v + 2} \\(no such table: no_such_table\\); the journal was left at version ${v}, and a copy from before is at .*journal\\.v${v}\\..*\\.sqlite`),
    );
    expect(versionOf(file)).toBe(v);
    const db = new Database(file, { readonly: true });
    expect(db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'added_first'`).get()).toEqual({ n: 0 });
    db.close();
    expect(verifyJournalFile(file)).toMatchObject({ events: 3, firstBreak: null });
    // the gateway of this version still opens it
    const j = Journal.open(dir);
    expect(j.events().length).toBe(3);
    j.close();
  });

  it('the gateway logs the upgrade and where the copy is', async () => {
    const { dir } = previousJournal(3);
    const gw = await startTestGateway({ gateway: { dataDir: dir } });
    await gw.stop();
    const line = gw.logs.find((l) => /journal migrated from schema version/.test(String(l.msg)));
    expect(line).toMatchObject({ level: 40, from: PREVIOUS, to: MIGRATIONS.length });
    expect(existsSync(String(line!.backup))).toBe(true);
  });

  it('a journal the gateway cannot migrate stops it at start with the reason in the log and the exit message', async () => {
    const { dir, file } = journalAtCurrentVersion();
    const db = new Database(file);
    db.pragma(`user_version = ${MIGRATIONS.length + 5}`);
    db.close();
    const cfg = join(tempDir('cfg'), 'gateway.json');
    writeFileSync(cfg, JSON.stringify({ gateway: { dataDir: dir, http: { port: await freePort() }, log: { format: 'json' } } }));
    const r = spawnSync(process.execPath, [cli, 'run', '--config', cfg], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    const why = `journal schema version ${MIGRATIONS.length + 5} is newer than this gateway knows (${MIGRATIONS.length}); upgrade the gateway`;
    expect(r.stderr).toContain(why);
    expect(r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string })).toContainEqual(expect.objectContaining({ level: 60, msg: expect.stringContaining(why) }));
  });
});

function journalAtCurrentVersion(): { dir: string; file: string } {
  const dir = tempDir('migrate');
  const j = Journal.open(dir);
  for (let i = 0; i < 3; i++) j.record('x', null, { i });
  j.close();
  return { dir, file: join(dir, 'journal.sqlite') };
}
