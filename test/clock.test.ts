/** The wall clock of a Pi without a real-time clock: its synchronised flag on every event, and its jumps. */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClockStatus, clockJump, JUMP_THRESHOLD_MS, type ClockJump, type ClockReading } from '../gateway/src/clock.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { tempDir } from './helpers.js';

describe('clock jumps', () => {
  it('a wall clock that keeps pace with the monotonic clock never jumps, whatever the interval', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2e12 }), fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 0, max: 1e7 }), fc.integer({ min: -1999, max: 1999 }), (wall, mono, elapsed, drift) => {
        expect(clockJump({ wall, mono }, { wall: wall + elapsed + drift, mono: mono + elapsed })).toBeNull();
      }),
    );
  });

  it('measures a step forwards (NTP after a power cut) and backwards', () => {
    const t0: ClockReading = { wall: Date.parse('2026-11-20T08:00:00Z'), mono: 1000 };
    expect(clockJump(t0, { wall: Date.parse('2026-11-25T09:30:05Z'), mono: 6000 })).toBe(Date.parse('2026-11-25T09:30:00Z') - Date.parse('2026-11-20T08:00:00Z'));
    expect(clockJump(t0, { wall: t0.wall + 5000 - JUMP_THRESHOLD_MS, mono: 6000 })).toBe(-JUMP_THRESHOLD_MS);
  });

  it('ClockStatus reports a jump once, with where the clock was and is, and whether it is synchronised', async () => {
    let now: ClockReading = { wall: Date.parse('2026-11-20T08:00:00Z'), mono: 0 };
    const jumps: ClockJump[] = [];
    const clock = new ClockStatus({ read: () => now, query: () => Promise.resolve(true), onJump: (j) => jumps.push(j) });
    await clock.poll();
    expect(clock.synced).toBe(true);
    now = { wall: now.wall + 5000, mono: 5000 };
    clock.checkJump();
    expect(jumps).toEqual([]);
    now = { wall: Date.parse('2026-11-25T09:30:10Z'), mono: 10_000 };
    clock.checkJump();
    now = { wall: now.wall + 5000, mono: 15_000 };
    clock.checkJump();
    expect(jumps).toEqual([{ byMs: Date.parse('2026-11-25T09:30:00Z') - Date.parse('2026-11-20T08:00:00Z'), from: '2026-11-20T08:00:10.000Z', to: '2026-11-25T09:30:10.000Z', synced: true }]);
  });
});

describe('the synchronised flag on every event', () => {
  it('is stored beside each event as the clock said when it was written: 1, 0 or unknown', () => {
    const dir = tempDir('clock');
    const journal = Journal.open(dir);
    const clock = { synced: null as boolean | null };
    journal.clock = clock;
    journal.record('gateway.started', null, {});
    clock.synced = false;
    journal.record('session.started', 'printer', {});
    clock.synced = true;
    journal.record('clock.jumped', null, { byMs: 3600_000 });
    journal.close();
    const db = new Database(join(dir, 'journal.sqlite'), { readonly: true });
    expect(db.prepare('SELECT kind, clock_synced AS synced FROM events ORDER BY id').all()).toEqual([
      { kind: 'gateway.started', synced: null },
      { kind: 'session.started', synced: 0 },
      { kind: 'clock.jumped', synced: 1 },
    ]);
    db.close();
  });
});
