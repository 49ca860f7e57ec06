/**
 * Every byte of the journal is checked: the hash covers every stored column, the chain's end is
 * compared with the head file beside it, and SQLite's own check finds a damaged page, which
 * `ovn-gateway repair` rebuilds when it is an index's and refuses to touch when it is the
 * events'. Through the real parts: SQLite on disk, pages damaged in the file, the CLI as a child
 * process.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHAIN_FORMAT, CHAIN_FORMATS, chainHash, GENESIS, verifyChain, type ChainRow, type FormatSegment } from '../gateway/src/journal/chain.js';
import { headFileOf, readHead } from '../gateway/src/journal/head.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { MIGRATIONS } from '../gateway/src/journal/migrations.js';
import { verifyJournalFile } from '../gateway/src/journal/verify.js';
import { tempDir } from './helpers.js';

const cli = join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js');
const ovn = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

function journalWith(n: number, dir = tempDir('integrity')): { dir: string; file: string } {
  const j = Journal.open(dir);
  j.clock = { synced: true };
  for (let i = 0; i < n; i++) j.record(i % 3 ? 'device.meter' : 'device.hello', `node-${i % 4}`, { i, text: `event ${i}` });
  j.close();
  return { dir, file: join(dir, 'journal.sqlite') };
}

function sql<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** Overwrites the root page of a table or index with garbage, as a failing SD card would. */
function damagePage(file: string, name: string): void {
  const { page, size } = sql(file, (db) => ({
    page: db.prepare('SELECT rootpage FROM sqlite_master WHERE name = ?').pluck().get(name) as number,
    size: db.pragma('page_size', { simple: true }) as number,
  }));
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(size, 0x5a), 0, size, (page - 1) * size);
  closeSync(fd);
}

describe('the hash covers every stored column', () => {
  it('the current chain format encodes every column of an event but its hash', () => {
    const { file } = journalWith(1);
    const columns = sql(file, (db) => db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('events') as string[]);
    expect([...CHAIN_FORMATS[CHAIN_FORMAT]].sort()).toEqual(columns.filter((c) => c !== 'hash').sort());
  });

  it('an edited clock_synced breaks the chain at that event', () => {
    const { dir, file } = journalWith(10);
    sql(file, (db) => db.prepare('UPDATE events SET clock_synced = 0 WHERE id = 4').run());
    const r = ovn('verify', '--data', dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/chain broken at event 4 \(altered\): event 4 \(device\.hello, .*\) does not match its hash; 3 events before it are intact/);
  });

  it('a journal from before keeps its hashes: its events verify as they were written, the next ones cover clock_synced', () => {
    // as the last schema version before chain format 2 left it: clock_synced stored, outside the hash (format 1)
    const before = MIGRATIONS.findIndex((m) => typeof m === 'string' && m.includes('CREATE TABLE chain_formats'));
    const dir = tempDir('integrity');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'journal.sqlite');
    sql(file, (db) => {
      for (const m of MIGRATIONS.slice(0, before)) {
        if (typeof m === 'string') db.exec(m);
        else m(db);
      }
      db.pragma(`user_version = ${before}`);
      let prev = GENESIS;
      for (let id = 1; id <= 5; id++) {
        const row = { id, at: `2026-11-0${id}T00:00:00.000Z`, kind: 'device.connected', device_id: 'n1', data: '{}', clock_synced: 1 };
        prev = chainHash(prev, row, 1);
        db.prepare('INSERT INTO events (id, at, kind, device_id, data, clock_synced, hash) VALUES (?, ?, ?, ?, ?, ?, ?)').run(row.id, row.at, row.kind, row.device_id, row.data, row.clock_synced, prev);
      }
    });
    const j = Journal.open(dir);
    j.clock = { synced: true };
    for (let i = 0; i < 3; i++) j.record('gateway.started', null, { i });
    j.close();
    expect(sql(file, (db) => db.prepare('SELECT from_id, format FROM chain_formats').all())).toEqual([{ from_id: 6, format: 2 }]);
    expect(verifyJournalFile(file)).toMatchObject({ events: 8, firstBreak: null });

    // The old events' clock flag was never in their hash, and is not now; the new ones' is.
    sql(file, (db) => db.prepare('UPDATE events SET clock_synced = 0 WHERE id = 3').run());
    expect(verifyJournalFile(file)).toMatchObject({ events: 8, firstBreak: null });
    sql(file, (db) => db.prepare('UPDATE events SET clock_synced = 0 WHERE id = 7').run());
    expect(verifyJournalFile(file).firstBreak).toMatchObject({ id: 7, problem: 'altered' });
  });
});

describe('the chain walk', () => {
  // verify lets SQLite encode the events (json_array) and hands over to chain.ts at the first
  // event that does not match: its verdict must be chain.ts's, whatever the text and whatever was edited.
  const text = (maxLength: number) => fc.string({ unit: 'binary', maxLength });
  const edit = fc.record({
    event: fc.nat(),
    column: fc.constantFrom('id', 'at', 'kind', 'device_id', 'data', 'clock_synced', 'hash'),
    value: fc.oneof(text(12), fc.integer({ min: -2, max: 40 }), fc.constant(null), fc.constant(1.5), fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b))),
  });
  it('names the same first break as chain.ts, for any events and any one edit', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ kind: text(12), deviceId: fc.option(text(8)), data: text(20), synced: fc.constantFrom(null, true, false) }), { minLength: 1, maxLength: 12 }),
        fc.option(edit),
        (events, change) => {
          const dir = tempDir('walk');
          const j = Journal.open(dir);
          for (const e of events) {
            j.clock = { synced: e.synced };
            j.record(e.kind, e.deviceId, { text: e.data });
          }
          j.close();
          const file = join(dir, 'journal.sqlite');
          rmSync(headFileOf(file));
          const reference = sql(file, (db) => {
            if (change) {
              try {
                db.prepare(`UPDATE events SET ${change.column} = ? WHERE id = ?`).run(change.value, (change.event % events.length) + 1);
              } catch {
                // a value the column refuses (NOT NULL, a taken id): nothing was edited
              }
            }
            const formats = db.prepare('SELECT from_id AS "from", format FROM chain_formats').all() as FormatSegment[];
            return verifyChain(db.prepare('SELECT id, at, kind, device_id, data, clock_synced, hash FROM events ORDER BY id').all() as (ChainRow & { hash: string })[], formats);
          });
          const walked = verifyJournalFile(file);
          expect({ ...walked, head: undefined, mismatches: undefined }).toEqual({ ...reference, head: undefined, mismatches: undefined });
          rmSync(dir, { recursive: true });
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('the head beside the journal', () => {
  it('names the last event at close', () => {
    const { file } = journalWith(12);
    const last = sql(file, (db) => db.prepare('SELECT id, hash FROM events ORDER BY id DESC LIMIT 1').get());
    expect(readHead(file)).toEqual(last);
  });

  it('deleting the last 5 events is reported with how many are missing; the next writer records the loss in the chain', () => {
    const { dir, file } = journalWith(20);
    sql(file, (db) => db.prepare('DELETE FROM events WHERE id > 15').run());
    const cut = ovn('verify', '--data', dir);
    expect(cut.status).toBe(1);
    expect(cut.stderr).toContain('chain broken at event 16 (removed): the last 5 events (16…20) are missing: the journal ends at event 15, its head names event 20; 15 events before it are intact');

    // Writing again must not hide the loss behind a new head.
    const j = Journal.open(dir);
    j.record('gateway.started', null, {});
    j.close();
    const again = ovn('verify', '--data', dir);
    expect(again.stderr).toBe('');
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/17 events, chain intact \(last hash [0-9a-f]{16}…\), its head agrees/);
    expect(again.stdout).toMatch(/note: event 16 \(.*\) records that the chain no longer reached its head: the last 5 events \(16…20\) are missing/);
  });

  it('an end rewritten with recomputed hashes is reported', () => {
    const { dir, file } = journalWith(20);
    sql(file, (db) => {
      db.prepare('DELETE FROM events WHERE id > 15').run();
      let prev = db.prepare('SELECT hash FROM events WHERE id = 15').pluck().get() as string;
      for (let id = 16; id <= 20; id++) {
        const row = { id, at: '2026-11-25T00:00:00.000Z', kind: 'device.meter', device_id: 'node-1', data: '{"forged":true}', clock_synced: 1 };
        prev = chainHash(prev, row);
        db.prepare('INSERT INTO events (id, at, kind, device_id, data, clock_synced, hash) VALUES (?, ?, ?, ?, ?, ?, ?)').run(row.id, row.at, row.kind, row.device_id, row.data, row.clock_synced, prev);
      }
    });
    const r = ovn('verify', '--data', dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/chain broken at event 20 \(rewritten\): event 20 is not the one its head names .*; the chain is consistent in itself, so its hashes were recomputed/);
  });
});

describe("SQLite's check of the file, and repair", () => {
  // nine runs of the command line, each a process of its own: a loaded machine needs the time
  it('a damaged index page: verify names it, billing verify points to verify and repair, repair rebuilds it, verify then passes', { timeout: 90_000 }, () => {
    const { dir, file } = journalWith(300);
    expect(ovn('verify', '--data', dir).stdout).toMatch(/300 events, chain intact .*\n.*integrity_check ok\n$/);
    damagePage(file, 'events_by_kind');

    const verify = ovn('verify', '--data', dir);
    expect(verify.status).toBe(1);
    expect(verify.stderr).toMatch(/300 events, chain intact/);
    expect(verify.stderr).toMatch(/finds index events_by_kind damaged: /);
    expect(verify.stderr).toContain('the events are intact and only indexes are damaged: stop the gateway and run ovn-gateway repair');
    const quick = ovn('verify', '--data', dir, '--quick');
    expect(quick.status).toBe(1);
    expect(quick.stderr).toMatch(/quick_check finds index events_by_kind damaged: /);

    // A command that reads through the index refuses with what to do, not "malformed" alone.
    const config = join(dir, '..', 'lab.yaml');
    writeFileSync(config, `gateway: { dataDir: ${JSON.stringify(dir)} }\nbilling: { currency: CAD, tools: {} }\n`);
    const billing = ovn('billing', 'verify', '--config', config);
    expect(billing.status).not.toBe(0);
    expect(billing.stderr).toContain(`${file} is damaged (database disk image is malformed): ovn-gateway verify says what is damaged; damaged indexes are rebuilt by ovn-gateway repair`);
    expect(billing.stderr).not.toMatch(/\n\s+at /);

    const repair = ovn('repair', '--data', dir);
    expect(repair.stderr).toBe('');
    expect(repair.status).toBe(0);
    expect(repair.stdout).toMatch(/rebuilt every index \(\d+\) from the tables, the damaged events_by_kind among them; integrity_check ok, 300 events, chain intact/);
    const kept = /the damaged journal is kept at (\S+)/.exec(repair.stdout)![1]!;
    expect(existsSync(kept)).toBe(true);

    const after = ovn('verify', '--data', dir);
    expect(after.stderr).toBe('');
    expect(after.status).toBe(0);
    expect(after.stdout).toMatch(/300 events, chain intact \(last hash [0-9a-f]{16}…\), its head agrees\n.*integrity_check ok\n$/);
    expect(ovn('billing', 'verify', '--config', config).stdout).toBe('0 charges and corrections recomputed: all match\n');
    // and the journal goes on where it was
    const j = Journal.open(dir);
    expect(j.record('gateway.started', null, {})).toBe(301);
    expect(j.events({ kind: 'device.hello' })).toHaveLength(100);
    j.close();
  });

  it('repair refuses when the events themselves are damaged, and changes nothing', () => {
    // the events' own page
    const torn = journalWith(5);
    damagePage(torn.file, 'events');
    const verify = ovn('verify', '--data', torn.dir);
    expect(verify.status).toBe(1);
    expect(verify.stderr).toMatch(/the events cannot be read \(database disk image is malformed\)/);
    expect(verify.stderr).toContain('ovn-gateway repair cannot rebuild it; restore the last good backup');
    const refused = ovn('repair', '--data', torn.dir);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('repair rebuilds indexes only, never a table: restore the last good backup (ovn-gateway restore)');
    expect(refused.stderr).toMatch(/nothing was changed\n$/);

    // an altered event beside a damaged index
    const altered = journalWith(300);
    sql(altered.file, (db) => db.prepare(`UPDATE events SET data = '{"i":41,"text":"edited"}' WHERE id = 42`).run());
    damagePage(altered.file, 'events_by_kind');
    const before = sql(altered.file, (db) => db.prepare('SELECT count(*) FROM events NOT INDEXED').pluck().get());
    const r = ovn('repair', '--data', altered.dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('the events themselves are damaged: chain broken at event 42 (altered)');
    expect(r.stderr).toMatch(/nothing was changed\n$/);
    expect(sql(altered.file, (db) => db.prepare('SELECT count(*) FROM events NOT INDEXED').pluck().get())).toBe(before);
    expect(ovn('verify', '--data', altered.dir).stderr).toMatch(/finds index events_by_kind damaged/);
  });

  it('repair has nothing to do on a sound journal, and refuses while the gateway runs', () => {
    const { dir, file } = journalWith(300);
    expect(ovn('repair', '--data', dir)).toMatchObject({ status: 0, stdout: expect.stringMatching(/integrity_check ok, nothing to repair\n$/) });
    const j = Journal.open(dir);
    // this test's own process stands for the running gateway
    j.record('gateway.started', null, { pid: process.pid });
    j.close();
    damagePage(file, 'events_by_device');
    const r = ovn('repair', '--data', dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`the gateway is running \\(pid ${process.pid}, started .*\\); stop it first`));
  });
});
