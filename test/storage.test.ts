/**
 * A full disk and a read-only or failing SD card: detected, reported, new sessions refused, and
 * what could not be written kept in memory and written, in order, once the storage accepts it.
 *
 * "Full" is a real small file system (a tmpfs, which needs root; CI runs as root) that fills up.
 * "Read-only" is SQLite refusing writes on the journal's own connection (`PRAGMA query_only`):
 * the kernel will not remount a file system read-only while the journal has a file open for
 * writing, which is what a failing card's emergency remount does; a journal that is already on
 * a read-only file system is tested at open.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../gateway/src/journal/journal.js';
import { verifyJournalFile } from '../gateway/src/journal/verify.js';
import { StorageMonitor } from '../gateway/src/journal/storage.js';
import { createLogger } from '../gateway/src/log.js';
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { serveTcp } from '../simulators/src/transports.js';
import { freePort, SIM_CLOCK_RATE, tempDir, waitFor } from './helpers.js';

const cli = join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js');
const HOUR = 3_600_000;

/** A tmpfs of `size` at a new directory, or null when this process may not mount (not root). */
function smallDisk(size: string): string | null {
  const dir = tempDir('disk');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    return null;
  }
  mounts.push(dir);
  return dir;
}
const mounts: string[] = [];
const canMount = (() => {
  const dir = smallDisk('64k');
  return dir !== null;
})();
const skipWithoutMount = !canMount && process.env.CI !== 'true';

afterAll(() => {
  for (const dir of mounts.reverse()) execFileSync('umount', ['-l', dir]);
});

function logSink() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, log: createLogger({ level: 'info', format: 'json' }, sink) };
}

/** Fills a file system with one file until it refuses more; returns the file. */
function fill(dir: string): string {
  const file = join(dir, 'filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return file;
}

describe('the journal on a full disk', () => {
  let journal: Journal | null = null;
  afterEach(() => journal?.close());

  it.skipIf(skipWithoutMount)('holds what it cannot write, refuses new sessions, and writes it all in order once there is room', async () => {
    const dir = smallDisk('700k')!;
    journal = Journal.open(dir);
    const { lines, log } = logSink();
    const monitor = new StorageMonitor(journal, dir, { floorBytes: 0, checkMs: HOUR }, log);
    await monitor.start();
    expect(monitor.health().state).toBe('ok');

    const payload = 'x'.repeat(4000);
    let written = 0;
    for (let i = 0; i < 2000 && journal.heldWrites === 0; i++) if (journal.record('meter.reading', 'n1', { i, payload })) written++;
    expect(written).toBeGreaterThan(10);
    expect(journal.heldWrites).toBeGreaterThan(0);
    expect(monitor.health()).toMatchObject({ state: 'full', floorBytes: 0 });
    expect(monitor.refusal()).toMatch(/cannot record new sessions: the disk is full/);
    expect(lines.some((l) => l.level === 50 && /disk is full/.test(String(l.msg)))).toBe(true);

    // a closed session that cannot be written now is kept, behind what was held before it
    expect(journal.durablyOrLater(() => void journal!.record('session.ended', 'printer', { sessionId: 's1', reason: 'badge-out' }))).toBe(false);
    expect(journal.record('access.decision', 'printer', { kind: 'deny' })).toBe(0);
    await monitor.check();
    expect(monitor.health().state).toBe('full');

    execFileSync('mount', ['-o', 'remount,size=16m', dir]);
    await monitor.check();
    expect(monitor.health()).toMatchObject({ state: 'ok', heldWrites: 0, message: null });
    expect(monitor.refusal()).toBeNull();
    const after = journal.events({ afterId: written, limit: 100 });
    expect(after.map((e) => e.kind)).toEqual(['meter.reading', 'storage.problem', 'session.ended', 'access.decision', 'storage.recovered']);
    expect(after[0]!.data.i).toBe(written);
    expect(after[1]!.data).toMatchObject({ state: 'full' });
    journal.close();
    expect(verifyJournalFile(join(dir, 'journal.sqlite'))).toMatchObject({ events: written + 5, firstBreak: null });
  });

  it('refuses new sessions below the free-space floor, before the disk is full', async () => {
    const dir = tempDir('floor');
    journal = Journal.open(dir);
    const monitor = new StorageMonitor(journal, dir, { floorBytes: 1e18, checkMs: HOUR }, logSink().log);
    await monitor.start();
    expect(monitor.health()).toMatchObject({ state: 'low-space', floorBytes: 1e18 });
    expect(monitor.health().freeBytes).toBeGreaterThan(0);
    expect(monitor.refusal()).toMatch(/below the floor of .* \(gateway\.minFreeMb\)/);
    expect(journal.events({ kind: 'storage.problem' })[0]!.data).toMatchObject({ state: 'low-space' });
  });
});

describe('the journal on a storage that turned read-only', () => {
  it('holds writes while SQLite refuses them and writes them when it accepts again', async () => {
    const dir = tempDir('ro');
    const journal = Journal.open(dir);
    const monitor = new StorageMonitor(journal, dir, { floorBytes: 0, checkMs: HOUR }, logSink().log);
    await monitor.start();
    journal.record('before', null, {});
    journal.db.pragma('query_only = ON');
    expect(journal.record('during', null, {})).toBe(0);
    expect(monitor.health()).toMatchObject({ state: 'read-only', heldWrites: 2 }); // the event and storage.problem
    expect(monitor.refusal()).toMatch(/read-only: the SD card may be failing/);
    await monitor.check();
    expect(journal.heldWrites).toBe(2);
    journal.db.pragma('query_only = OFF');
    await monitor.check();
    expect(journal.events().map((e) => e.kind)).toEqual(['before', 'during', 'storage.problem', 'storage.recovered']);
    journal.close();
  });

  it('a closed session refused by the storage reaches the after-commit listeners once, when it is written', async () => {
    const dir = tempDir('ro-commit');
    const journal = Journal.open(dir);
    const monitor = new StorageMonitor(journal, dir, { floorBytes: 0, checkMs: HOUR }, logSink().log);
    await monitor.start();
    const tapped: string[] = [];
    const published: string[] = [];
    journal.tap((e) => tapped.push(e.kind));
    journal.afterCommit((e) => published.push(e.kind));
    // the storage refuses a write after the event was appended, as a full disk refuses the commit
    let refuse = true;
    const close = () => {
      journal.record('session.ended', 'printer', { sessionId: 's1', reason: 'badge-out' });
      if (refuse) journal.db.pragma('query_only = ON');
      journal.record('session.charged', 'printer', { sessionId: 's1' });
    };
    expect(journal.durablyOrLater(close)).toBe(false);
    expect(tapped).toEqual(['session.ended']);
    expect(published).toEqual([]);
    refuse = false;
    journal.db.pragma('query_only = OFF');
    await monitor.check();
    expect(monitor.health()).toMatchObject({ state: 'ok', heldWrites: 0 });
    expect(tapped.filter((k) => k === 'session.ended')).toHaveLength(2); // the refused try and the written one
    expect(published).toEqual(['session.ended', 'session.charged', 'storage.problem', 'storage.recovered']);
    expect(journal.events({ kind: 'session.ended' })).toHaveLength(1);
    journal.close();
  });

  it('a held write that fails for another reason is set aside and named; the writes behind it are written and new sessions are allowed', async () => {
    const dir = tempDir('ro-poison');
    const journal = Journal.open(dir);
    const { lines, log } = logSink();
    const monitor = new StorageMonitor(journal, dir, { floorBytes: 0, checkMs: HOUR }, log);
    await monitor.start();
    journal.db.pragma('query_only = ON');
    // refused by the storage first; once it accepts writes, it fails on its own
    const poisoned = () => {
      journal.record('session.ended', 'printer', { sessionId: 's1', wh: 42 });
      throw new Error('no price for the printer');
    };
    expect(journal.durablyOrLater(poisoned)).toBe(false);
    expect(journal.record('access.decision', 'printer', { kind: 'deny' })).toBe(0);
    expect(monitor.health()).toMatchObject({ state: 'read-only', heldWrites: 3 });
    journal.db.pragma('query_only = OFF');
    await monitor.check();
    expect(monitor.health()).toMatchObject({ state: 'ok', heldWrites: 0, message: null });
    expect(journal.events().map((e) => e.kind)).toEqual(['storage.problem', 'access.decision', 'storage.recovered']);
    const report = lines.find((l) => /set aside/.test(String(l.msg)))!;
    expect(report.msg).toBe(
      'a held journal write cannot be written and was set aside: a transaction, recording session.ended failed for another reason than the storage (no price for the printer); its events are in this entry, to be recovered by hand',
    );
    expect(report.events).toEqual([{ kind: 'session.ended', deviceId: 'printer', data: { sessionId: 's1', wh: 42 } }]);
    expect(journal.record('session.started', 'printer', { sessionId: 's2' })).toBeGreaterThan(0);
    journal.close();
  });

  it.skipIf(skipWithoutMount)('a journal on a read-only file system cannot be opened, and says why', () => {
    const dir = smallDisk('4m')!;
    Journal.open(dir).close();
    execFileSync('mount', ['-o', 'remount,ro', dir]);
    expect(() => Journal.open(dir)).toThrow(/journal\.sqlite: cannot open the journal, the file system is read-only: the SD card may be failing/);
  });
});

// Through the real command: its guard keeps the gateway running when a device's own write (meter
// totals, checkpoints) hits the full disk.
describe('a gateway whose storage cannot record', () => {
  it.skipIf(skipWithoutMount)('on a disk that fills up: the running session goes on, its close is kept until there is room, no session starts meanwhile', async () => {
    const disk = smallDisk('3m')!;
    const dataDir = join(disk, 'data');
    mkdirSync(dataDir);
    const sim = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 200, powerW: 100, timeScale: 60 });
    const transport = await serveTcp(sim, '127.0.0.1', 0);
    const port = await freePort();
    const cfg = join(tempDir('cfg'), 'gateway.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        gateway: { dataDir, http: { port }, log: { format: 'json' }, minFreeMb: 0, checkpointS: 1 },
        devices: [{ id: 'n1', kind: 'metering-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transport.address } }],
        tools: [{ id: 'printer', node: 'n1', idleTimeoutMin: 60, warnBeforeOffS: 0 }],
        affiliates: [{ id: 'ada', name: 'Ada', badges: ['04A1B2C3'], qualifications: [{ tool: 'printer' }] }],
      }),
    );
    const out: string[] = [];
    const child: ChildProcess = spawn(process.execPath, [cli, 'run', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => out.push(...d.toString().split('\n')));
    child.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
    const logged = (re: RegExp) => out.some((l) => re.test(l));
    try {
      await waitFor(() => logged(/node n1 firmware .* online/), 20_000);
      sim.badge('04A1B2C3');
      await waitFor(() => sim.truth().relay.sensed === true);
      sim.setBusy(true);

      const filler = fill(disk);
      // meter readings, checkpoints and events keep coming: the first refused write is noticed
      await waitFor(() => logged(/cannot record new sessions: the disk is full/), 20_000);
      expect(child.exitCode).toBeNull();
      expect(sim.truth().relay.sensed).toBe(true); // the session goes on

      sim.setBusy(false);
      sim.badge('04A1B2C3'); // badge-out: the relay goes off, the close is held
      await waitFor(() => sim.truth().relay.sensed === false);
      sim.badge('04A1B2C3'); // a new session could not be recorded
      await waitFor(() => logged(/badge 04A1B2C3: deny \(storage-unavailable\)/));
      expect(sim.truth().relay.sensed).toBe(false);

      rmSync(filler);
      await waitFor(() => logged(/storage is usable again/), 20_000);
      expect(child.exitCode).toBeNull();
    } catch (err) {
      throw Object.assign(err as Error, { message: `${(err as Error).message}; the gateway's log ended with:\n${out.slice(-40).join('\n')}` });
    } finally {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
      await transport.close();
    }
    expect(child.exitCode).toBe(0);
    const db = new Database(join(dataDir, 'journal.sqlite'), { readonly: true });
    const ended = db.prepare(`SELECT data FROM events WHERE kind = 'session.ended'`).all() as { data: string }[];
    const decisions = db.prepare(`SELECT data FROM events WHERE kind = 'access.decision'`).all() as { data: string }[];
    db.close();
    expect(ended.map((r) => JSON.parse(r.data) as { affiliateId: string; reason: string })).toMatchObject([{ affiliateId: 'ada', reason: 'badge-out' }]);
    expect(decisions.map((r) => (JSON.parse(r.data) as { kind: string; reason?: string }).reason ?? (JSON.parse(r.data) as { kind: string }).kind)).toEqual(['grant', 'badge-out', 'storage-unavailable']);
    expect(verifyJournalFile(join(dataDir, 'journal.sqlite')).firstBreak).toBeNull();
  }, 90_000);
});
