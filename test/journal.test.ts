import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Journal } from '../gateway/src/journal/journal.js';
import { verifyJournalFile } from '../gateway/src/journal/verify.js';
import { MIGRATIONS } from '../gateway/src/journal/migrations.js';
import { tempDir } from './helpers.js';

const cli = join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js');

function journalWith(n: number): { dir: string; file: string } {
  const dir = tempDir('journal');
  const j = Journal.open(dir);
  for (let i = 0; i < n; i++) j.record(i % 2 ? 'device.hello' : 'device.lost', 'node-1', { i, text: `event ${i}` });
  j.close();
  return { dir, file: join(dir, 'journal.sqlite') };
}

describe('journal hash chain', () => {
  it('chains every event; verify walks it', () => {
    const { file } = journalWith(50);
    expect(verifyJournalFile(file)).toMatchObject({ events: 50, firstBreak: null });
  });

  it('names the first altered event', () => {
    const { file } = journalWith(20);
    const db = new Database(file);
    db.prepare(`UPDATE events SET data = '{"i":7,"text":"edited"}' WHERE id = 8`).run();
    db.close();
    expect(verifyJournalFile(file).firstBreak).toMatchObject({ id: 8, problem: 'altered' });
  });

  it('names where events were removed', () => {
    const { file } = journalWith(20);
    const db = new Database(file);
    db.prepare('DELETE FROM events WHERE id IN (5, 6)').run();
    db.close();
    expect(verifyJournalFile(file).firstBreak).toMatchObject({ id: 7, problem: 'removed', detail: 'events 5…6 are missing before event 7' });
  });

  it('stays intact when two writers share the file', () => {
    const dir = tempDir('journal');
    const a = Journal.open(dir);
    const b = Journal.open(dir);
    for (let i = 0; i < 30; i++) (i % 3 ? a : b).record('x', null, { i });
    a.close();
    b.close();
    expect(verifyJournalFile(join(dir, 'journal.sqlite'))).toMatchObject({ events: 30, firstBreak: null });
  });

  it('upgrades a journal made by schema version 1, chaining the events it already had', () => {
    const dir = tempDir('journal');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'journal.sqlite');
    const old = new Database(file);
    old.exec(MIGRATIONS[0] as string);
    old.pragma('user_version = 1');
    const ins = old.prepare('INSERT INTO events (at, kind, device_id, data) VALUES (?, ?, ?, ?)');
    for (let i = 0; i < 5; i++) ins.run(`2026-11-0${i + 1}T00:00:00.000Z`, 'device.connected', 'n', JSON.stringify({ i }));
    old.close();
    expect(() => verifyJournalFile(file)).toThrow(/schema version 1 has no hash chain/);

    const j = Journal.open(dir);
    expect(j.schemaVersion).toBe(MIGRATIONS.length);
    j.record('gateway.started', null, {});
    expect(j.events().map((e) => e.kind)).toEqual([...Array(5).fill('device.connected'), 'gateway.started']);
    j.close();
    expect(verifyJournalFile(file)).toMatchObject({ events: 6, firstBreak: null });
  });

  it('ovn-gateway verify: ok with exit 0, or the first break with exit 1', () => {
    const { dir, file } = journalWith(10);
    const ok = spawnSync(process.execPath, [cli, 'verify', '--data', dir], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/10 events, chain intact/);
    const db = new Database(file);
    db.prepare(`UPDATE events SET kind = 'forged' WHERE id = 4`).run();
    db.close();
    const bad = spawnSync(process.execPath, [cli, 'verify', '--data', dir], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/chain broken at event 4 \(altered\): event 4 \(forged, .*\) does not match its hash; 3 events before it are intact/);
  });
});

describe('journal listeners', () => {
  it('taps hear an event inside its transaction; after-commit listeners only once the outermost transaction commits', () => {
    const j = Journal.open(tempDir('listeners'));
    const tapped: string[] = [];
    const committed: string[] = [];
    j.tap((e) => tapped.push(e.kind));
    const stop = j.afterCommit((e) => committed.push(`${e.id} ${e.kind}`));

    j.record('alone', null);
    expect(committed).toEqual(['1 alone']);

    j.db.transaction(() => {
      j.record('kept', null);
      try {
        j.db.transaction(() => {
          j.record('undone', null);
          throw new Error('the nested part fails');
        })();
      } catch {
        // the outer transaction goes on without it
      }
      j.record('after', null);
      expect(committed).toEqual(['1 alone']);
    })();
    expect(committed).toEqual(['1 alone', '2 kept', '3 after']);

    expect(() =>
      j.db.transaction(() => {
        j.record('rolled-back', null);
        throw new Error('the whole transaction fails');
      }).immediate(),
    ).toThrow(/whole transaction fails/);
    expect(tapped).toEqual(['alone', 'kept', 'undone', 'after', 'rolled-back']);
    expect(committed).toEqual(['1 alone', '2 kept', '3 after']);

    stop();
    j.record('unheard', null);
    expect(committed).toHaveLength(3);
    expect(j.events().map((e) => e.kind)).toEqual(['alone', 'kept', 'after', 'unheard']);
    j.close();
  });
});
