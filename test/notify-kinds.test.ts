/**
 * The kinds of notification beyond receipts and faults, each to its role through a real HTTP
 * receiver that verifies the webhook signature: implausible readings, the journal's storage,
 * corrections, refused badges, print jobs, maintenance due and overdue, the clock, the ledger,
 * months ready to close; flapping suppressed into a summary; quiet hours (held, then sent,
 * across a restart); a person's channels and opt-outs. Journals on disk.
 */
import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { AccessStore } from '../gateway/src/access/store.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { notificationsSchema } from '../gateway/src/notify/config.js';
import { Notifier, type NotifierProbes } from '../gateway/src/notify/outbox.js';
import { quietUntil } from '../gateway/src/notify/preferences.js';
import { tempDir } from './helpers.js';
import { charge, HttpReceiver, type Received } from './notify-receivers.js';

const SECRET = 'a-webhook-secret-of-some-length';

interface Body {
  id: string;
  kind: string;
  severity: string;
  title: string;
  summary: string;
  facts: Record<string, string>;
  affiliateId?: string;
}

function verified(r: Received): Body {
  const ts = String(r.headers['x-ovn-timestamp']);
  if (r.headers['x-ovn-signature'] !== 'sha256=' + createHmac('sha256', SECRET).update(`${ts}.${r.body}`).digest('hex')) throw new Error(`bad signature on ${r.body}`);
  return JSON.parse(r.body) as Body;
}

const stops: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Three receivers, one per role, so that each role's messages are found by path. */
async function setup(opts: { over?: Record<string, unknown>; probes?: NotifierProbes; dir?: string; now?: () => number } = {}) {
  const hook = await new HttpReceiver().start();
  stops.push(() => hook.stop());
  const journal = Journal.open(opts.dir ?? tempDir('notify-kinds'));
  stops.push(() => journal.close());
  const url = (role: string) => ({ kind: 'webhook', url: `${hook.url}/${role}`, secret: SECRET });
  const cfg = notificationsSchema.parse({
    channels: { affiliates: url('affiliate'), maintainers: url('maintainer'), custodians: url('custodian'), other: url('other') },
    recipients: { affiliate: [{ channel: 'affiliates' }, { channel: 'other' }], maintainer: [{ channel: 'maintainers' }], custodian: [{ channel: 'custodians' }] },
    backoff: { initialMs: 20, maxMs: 100 },
    checkEveryS: 0.05,
    timeZone: 'UTC',
    ...opts.over,
  });
  const rules = { billedTools: new Set(['t1']), minorUnit: 2, refusedBadges: cfg.refusedBadges, printerTools: new Map([['mk4', 'printer']]) };
  const notifier = new Notifier(journal, cfg, { gateway: 'lab', baseDir: '.', rules, deviceIds: [], probes: opts.probes, ...(opts.now ? { now: opts.now } : {}) }, createLogger({ level: 'error', format: 'json' }));
  notifier.attach();
  notifier.start();
  stops.push(() => notifier.stop());
  const to = (role: string) => hook.requests.filter((r) => r.path === `/${role}`).map(verified);
  /** Waits until `n` messages reached a role's receiver. */
  const until = async (role: string, n: number) => {
    for (let i = 0; i < 200 && to(role).length < n; i++) await sleep(25);
    return to(role);
  };
  return { hook, journal, notifier, to, until, cfg };
}

describe('notification kinds', () => {
  it('tells the maintainers of implausible readings and the storage (with its recovery), the custodian of corrections and payments; a refused badge only when the lab wants it', async () => {
    const { journal, until, to } = await setup();
    journal.record('meter.implausible', 'n1', { implausible: [{ counter: 'energyMwh' }], text: 'energy went back by 4 Wh', notJournaled: 3 });
    journal.record('storage.problem', null, { state: 'low-space', freeBytes: 40e6, floorBytes: 100e6, detail: null });
    journal.record('storage.problem', null, { state: 'read-only', freeBytes: 40e6, floorBytes: 100e6, detail: null }); // the same incident: not again
    journal.record('storage.recovered', null, { previous: 'read-only', freeBytes: 500e6 });
    journal.record('billing.correction', 't1', { sessionId: 's1', affiliateId: 'ada', change: { kind: 'material', filamentG: 30 }, reason: 'spool weighed', by: 'carol', period: '2026-12', delta: [{ account: 'material', amount: -250 }, { account: 'ada', amount: 250 }] });
    journal.record('access.decision', 't1', { uid: '04AB', reader: 'r1', kind: 'deny', reason: 'not-qualified', affiliateId: 'ada' });
    journal.record('billing.payment', null, { affiliateId: 'ada', paidOn: '2026-12-03', amount: 4250, currency: 'CAD', method: 'transfer', reference: 'INTERAC 7731', by: 'carol' });
    const m = await until('maintainer', 3);
    expect(m.map((b) => [b.kind, b.severity, b.title])).toEqual([
      ['implausible-reading', 'warning', 'n1: implausible meter reading'],
      ['storage', 'critical', 'Journal storage: low-space'],
      ['storage-resolved', 'info', 'Resolved: journal storage usable again'],
    ]);
    expect(m[0]!.facts).toMatchObject({ Counters: 'energyMwh', 'Not journaled since the last': '3' });
    expect(m[2]!.id).toBe(`${m[1]!.id}:resolved`);
    const [c, p] = await until('custodian', 2);
    expect(c).toMatchObject({ kind: 'correction', title: 'Correction: session s1 at t1', facts: { Moved: '2.50', By: 'carol', 'Lands in': '2026-12' } });
    expect(p).toMatchObject({ kind: 'payment', title: 'Payment from ada: 42.50 CAD', facts: { Amount: '42.50 CAD', 'Paid on': '2026-12-03', Method: 'transfer', Reference: 'INTERAC 7731', 'Recorded by': 'carol' } });
    await sleep(200);
    expect(to('affiliate')).toEqual([]); // refused badges are off by default
  });

  it('tells the affiliate of a refused badge with the reason, and of their print finished or failed', async () => {
    const { journal, until } = await setup({ over: { refusedBadges: true } });
    journal.record('access.decision', 't1', { uid: '04AB', reader: 'r1', kind: 'deny', reason: 'qualification-expired', affiliateId: 'ada' });
    journal.record('access.decision', 't1', { uid: 'FFFF', reader: 'r1', kind: 'deny', reason: 'unknown-badge', affiliateId: null }); // nobody to tell
    journal.record('session.started', 'printer', { sessionId: 's9', toolId: 'printer', affiliateId: 'bo' });
    journal.record('printer.job-ended', 'mk4', { jobId: 'j1', mode: 'host', file: 'benchy.gcode', outcome: 'finished', reason: 'done', filamentMm: 3000, filamentG: 8.9, durationS: 3900 });
    journal.record('printer.job-ended', 'mk4', { jobId: 'j2', mode: 'sd', file: 'vase.gcode', outcome: 'failed', reason: 'thermal runaway', filamentMm: 100, filamentG: 0.3, durationS: 60 });
    journal.record('printer.job-ended', 'other-printer', { jobId: 'j3', mode: 'host', file: 'x.gcode', outcome: 'finished', reason: 'done', filamentMm: 0, filamentG: 0, durationS: 1 }); // no tool: nobody
    // jobs sent from a slicer wait for their owner's badge, or first for their word on the quote
    const queued = { expiresAt: '2026-12-06T10:00:00.000Z', by: 'ada' };
    journal.record('print-job.queued', 'printer', { jobId: 'p1', owner: 'ada', staff: false, file: 'hook.gcode', quote: { filamentG: 4.21, durationS: 1800, total: '1.37 CAD', confirmNeeded: false }, ...queued });
    journal.record('print-job.queued', 'printer', { jobId: 'p2', owner: 'ada', staff: false, file: 'vase.gcode', quote: { filamentG: 120, durationS: 36000, total: '31.20 CAD', confirmNeeded: true }, ...queued });
    journal.record('print-job.queued', 'printer', { jobId: 'p3', owner: 'mia', staff: true, file: 'calibration.gcode', quote: { filamentG: 1, durationS: 60, total: null, confirmNeeded: false }, ...queued }); // staff: no one to tell
    const a = await until('affiliate', 5);
    expect(a.map((b) => [b.kind, b.severity, b.affiliateId, b.title])).toEqual([
      ['refused-badge', 'info', 'ada', 't1 refused your badge'],
      ['job-finished', 'info', 'bo', 'mk4: benchy.gcode is done'],
      ['job-failed', 'warning', 'bo', 'mk4: vase.gcode failed'],
      ['job-waiting', 'info', 'ada', 'printer: hook.gcode waits for your badge'],
      ['quote-waiting', 'info', 'ada', 'printer: confirm the quote for vase.gcode'],
    ]);
    expect(a[3]!.facts).toMatchObject({ Quote: '1.37 CAD', Filament: '4.2 g', 'Estimated time': '30 min' });
    expect(a[4]!.summary).toBe('Your print vase.gcode is quoted 31.20 CAD, above what printer starts without your word: confirm it on the dashboard, then badge in at printer to start it.');
    expect(a[0]!.summary).toBe('t1 did not start for you: your qualification on this tool has expired.');
    expect(a[1]!.facts).toMatchObject({ Time: '1 h 5 min', Filament: '8.9 g' });
  });

  it('looks at maintenance, the clock, the ledger and the months: one alert per incident while it lasts, its resolution when it ends', async () => {
    const state = { runHours: 9, synced: false as boolean | null, alarm: null as string | null, dead: 0, month: '2026-11' as string | null };
    const { until, to } = await setup({
      over: { clockUnsyncedAfterMin: 0.01 },
      probes: {
        maintenance: () => [{ toolId: 'laser', runHours: state.runHours, serviceEveryH: 10 }],
        clockSynced: () => state.synced,
        ledger: () => ({ alarm: state.alarm, deadLetters: state.dead }),
        monthToClose: () => state.month,
      },
    });
    await until('maintainer', 1);
    expect(to('maintainer').map((b) => b.kind)).toEqual(['clock']); // unsynchronised for longer than the minutes
    state.runHours = 10.2; // due
    await until('maintainer', 2);
    state.runHours = 11.5; // overdue too
    state.alarm = '12000 records wait for the ledger (alarm above 10000)';
    state.dead = 2;
    await until('maintainer', 5);
    await sleep(200); // looked at again and again: nothing new
    state.runHours = 0; // serviced
    state.synced = true;
    state.alarm = null;
    state.dead = 0;
    const m = await until('maintainer', 10);
    await sleep(200);
    expect(to('maintainer').map((b) => [b.kind, b.severity])).toEqual([
      ['clock', 'warning'],
      ['maintenance-due', 'warning'],
      ['maintenance-overdue', 'critical'],
      ['ledger-backlog', 'warning'],
      ['ledger-dead-letters', 'critical'],
      ['maintenance-resolved', 'info'],
      ['maintenance-resolved', 'info'],
      ['clock-resolved', 'info'],
      ['ledger-backlog-resolved', 'info'],
      ['ledger-dead-letters-resolved', 'info'],
    ]);
    expect(m[1]).toMatchObject({ title: 'laser: service due', facts: { 'Run hours': '10.2', 'Service every': '10 h' } });
    expect(m[2]!.summary).toContain('past 11.0 h');
    expect(m[4]!.summary).toContain('2 records were refused by the ledger');
    expect(m[5]!.id).toBe(`${m[1]!.id}:resolved`);
    const c = to('custodian');
    expect(c.map((b) => [b.kind, b.title])).toEqual([['month-ready', 'Month 2026-11 ready to close']]);
  });

  it('suppresses a flapping incident: its first alert and resolution, then one summary of the rest at the end of the window', async () => {
    const { journal, until, to } = await setup({ over: { flapping: { windowMin: 0.01 } } });
    const fault = { code: 'mintemp', severity: 'critical', text: 'MINTEMP triggered' };
    for (let i = 0; i < 5; i++) {
      journal.record('device.fault', 'p1', fault);
      journal.record('device.fault-cleared', 'p1', fault);
    }
    journal.record('device.fault', 'p1', fault); // ends open
    const m = await until('maintainer', 3);
    await sleep(300);
    expect(to('maintainer')).toHaveLength(3);
    expect(m.map((b) => [b.kind, b.severity])).toEqual([
      ['fault', 'critical'],
      ['fault-resolved', 'info'],
      ['flapping', 'critical'],
    ]);
    expect(m[2]!.summary).toContain('It opened 6 times from');
    expect(m[2]!.summary).toContain('It is open now.');
    expect(m[2]!.facts).toMatchObject({ Openings: '6', Now: 'open' });
    // once the window has passed, its resolution is the summary's
    await sleep(700);
    journal.record('device.fault-cleared', 'p1', fault);
    const r = await until('maintainer', 4);
    expect(r[3]).toMatchObject({ kind: 'fault-resolved', id: `${m[2]!.id}:resolved` });
  });

  it('ends quiet hours when the wall clock says so, on the nights the clocks change too', () => {
    const zone = 'America/Toronto';
    const end = (at: string, quiet = '22:00-07:00') => quietUntil(quiet, new Date(at), zone)?.toISOString() ?? null;
    expect(end('2026-10-15T03:00:00Z')).toBe('2026-10-15T11:00:00.000Z'); // 23:00 EDT → 07:00 EDT
    expect(end('2026-11-01T03:00:00Z')).toBe('2026-11-01T12:00:00.000Z'); // the clocks go back at 02:00: 07:00 is EST
    expect(end('2026-03-08T04:00:00Z')).toBe('2026-03-08T11:00:00.000Z'); // they go forward at 02:00: 07:00 is EDT
    expect(end('2026-03-08T06:30:00Z', '01:00-02:30')).toBe('2026-03-08T07:30:00.000Z'); // 02:30 never comes that night: the minutes counted
    expect(end('2026-10-15T16:00:00Z')).toBeNull(); // noon: not quiet
  });

  it("holds what is not critical through a person's quiet hours and sends it when they end, across a restart; critical messages go at once", async () => {
    let offsetMs = 0;
    const now = () => Date.now() + offsetMs;
    const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
    const quiet = `${hhmm(Date.now())}-${hhmm(Date.now() + 120_000)}`;
    const dir = tempDir('notify-quiet');
    const first = await setup({ dir, now, over: { recipients: { affiliate: [{ channel: 'affiliates' }], maintainer: [{ channel: 'maintainers', quietHours: quiet }] } } });
    new AccessStore(first.journal).put({ id: 'ada', name: 'Ada', email: 'ada@example.org' });
    first.notifier.store.preferences.put('ada', { channels: null, optOut: [], quietHours: quiet }, 'ada', ['affiliates']);
    first.journal.record('billing.charge', 't1', charge('q1'));
    first.journal.record('meter.implausible', 'n1', { implausible: [{ counter: 'energyMwh' }], text: 'back by 4 Wh', notJournaled: 0 });
    first.journal.record('device.fault', 'p1', { kind: 'thermal-runaway', text: 'Thermal Runaway' });
    const [fault] = await first.until('maintainer', 1);
    expect(fault).toMatchObject({ kind: 'fault', severity: 'critical' });
    await sleep(300);
    expect(first.to('affiliate')).toEqual([]);
    expect(first.to('maintainer')).toHaveLength(1);
    expect(first.notifier.health()).toMatchObject({ held: 2, backlog: 0 });
    for (const s of stops.splice(0).reverse()) await s();

    // started again after the quiet hours: what was held goes
    offsetMs = 180_000;
    const second = await setup({ dir, now, over: { recipients: { affiliate: [{ channel: 'affiliates' }], maintainer: [{ channel: 'maintainers', quietHours: quiet }] } } });
    expect((await second.until('affiliate', 1)).map((b) => [b.kind, b.id])).toEqual([['receipt', 'receipt:q1']]);
    expect((await second.until('maintainer', 1)).map((b) => b.kind)).toEqual(['implausible-reading']);
    for (let i = 0; i < 100 && second.notifier.health().backlog > 0; i++) await sleep(20); // received, then recorded
    expect(second.notifier.health()).toMatchObject({ held: 0, backlog: 0, delivered: 3 });
  });

  it("follows a person's choices: only the channels they chose, nothing of a kind they turned off", async () => {
    const { journal, notifier, until, to } = await setup();
    const prefs = notifier.store.preferences;
    expect(() => prefs.put('ada', { channels: ['nope'], optOut: [], quietHours: null }, 'ada', ['affiliates', 'other'])).toThrow('channels: no channel "nope"');
    prefs.put('ada', { channels: ['other'], optOut: [], quietHours: null }, 'ada', ['affiliates', 'other']);
    prefs.put('bo', { channels: null, optOut: ['receipt'], quietHours: null }, 'admin', ['affiliates', 'other']);
    journal.record('billing.charge', 't1', charge('c-ada', 'ada'));
    journal.record('billing.charge', 't1', charge('c-bo', 'bo'));
    journal.record('session.end-deferred', 't1', { sessionId: 's-bo', affiliateId: 'bo', reason: 'idle-timeout', busy: false, offInS: 120 });
    await until('other', 2);
    await sleep(200);
    expect(to('other').map((b) => [b.kind, b.affiliateId])).toEqual([
      ['receipt', 'ada'],
      ['switch-off-warning', 'bo'],
    ]);
    expect(to('affiliate').map((b) => [b.kind, b.affiliateId])).toEqual([['switch-off-warning', 'bo']]);
    expect(journal.events({ kind: 'notify.preferences' }).map((e) => [e.data.affiliateId, e.data.by])).toEqual([
      ['ada', 'ada'],
      ['bo', 'admin'],
    ]);
  });
});
