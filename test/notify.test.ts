/**
 * Notifications on a journal on disk, delivered to a real HTTP receiver that verifies the
 * webhook signature as docs/notifications.md tells a receiver to: written with the event that
 * causes them (rolled back with it), deduplicated, one alert and one resolution per incident,
 * delivered in order per destination with retries, dead-lettered with the reason.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { notificationsSchema } from '../gateway/src/notify/config.js';
import { Notifier } from '../gateway/src/notify/outbox.js';
import { tempDir } from './helpers.js';
import { charge, HttpReceiver, type Received } from './notify-receivers.js';

const SECRET = 'a-webhook-secret-of-some-length';

/** What a receiver does (docs/notifications.md): HMAC-SHA256 over "<timestamp>.<body>", compared in constant time. */
function verified(r: Received): { id: string; kind: string; severity: string; title: string; summary: string; facts: Record<string, string>; affiliateId?: string } {
  const timestamp = String(r.headers['x-ovn-timestamp']);
  const expected = Buffer.from('sha256=' + createHmac('sha256', SECRET).update(`${timestamp}.${r.body}`).digest('hex'));
  const given = Buffer.from(String(r.headers['x-ovn-signature']));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new Error(`bad signature on ${r.body}`);
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) throw new Error('stale timestamp');
  const body = JSON.parse(r.body) as ReturnType<typeof verified>;
  expect(r.headers['x-ovn-delivery']).toBe(body.id);
  return body;
}


const stops: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

async function setup(over: Record<string, unknown> = {}) {
  const hook = await new HttpReceiver().start();
  stops.push(() => hook.stop());
  const journal = Journal.open(tempDir('notify'));
  stops.push(() => journal.close());
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, done) => (c.toString().split('\n').filter(Boolean).forEach((l) => logs.push(JSON.parse(l))), done()) });
  const cfg = notificationsSchema.parse({
    channels: { hook: { kind: 'webhook', url: `${hook.url}/ovn`, secret: SECRET } },
    recipients: { affiliate: [{ channel: 'hook' }], maintainer: [{ channel: 'hook' }], custodian: [{ channel: 'hook' }] },
    backoff: { initialMs: 20, maxMs: 100 },
    ...over,
  });
  const notifier = new Notifier(journal, cfg, { gateway: 'lab', baseDir: '.', rules: { billedTools: new Set(['t1']), minorUnit: 2 }, deviceIds: ['n1'] }, createLogger({ level: 'warn', format: 'json' }, sink));
  notifier.attach();
  notifier.start();
  stops.push(() => notifier.stop());
  return { hook, journal, notifier, logs };
}

describe('notifications', () => {
  it('writes a receipt with the charge, in its transaction: rolled back with it, delivered signed once it commits, once however often written', async () => {
    const { hook, journal, notifier } = await setup();
    expect(() =>
      journal.db.transaction(() => {
        journal.record('billing.charge', 't1', charge('s0'));
        throw new Error('the session close fails');
      })(),
    ).toThrow('the session close fails');
    expect(notifier.store.counts().pending).toBe(0);

    journal.durably(() => journal.record('billing.charge', 't1', charge('s1')));
    journal.record('billing.charge', 't1', charge('s1')); // the same receipt again: not a second message
    const [r] = await hook.received(1);
    expect(r!.method).toBe('POST');
    expect(r!.path).toBe('/ovn');
    const body = verified(r!);
    expect(body).toMatchObject({ id: 'receipt:s1', kind: 'receipt', severity: 'info', affiliateId: 'ada', title: 'Receipt: t1, 12.34 CAD' });
    expect(body.facts).toMatchObject({ Time: '1 h 30 min', Filament: '42.5 g', Energy: '180.3 Wh', Cost: '12.34 CAD', 'to material': '8.50 CAD', 'to co-owner (bo)': '1.92 CAD' });
    // a tampered body does not verify
    expect(() => verified({ ...r!, body: r!.body.replace('12.34', '1.34') })).toThrow('bad signature');
    await notifier.stop(); // everything delivered is recorded as such
    expect(notifier.store.counts()).toMatchObject({ pending: 0, delivered: 1, dead: 0 });
    expect(hook.requests).toHaveLength(1);
  });

  it('tells of a fault at once and of its resolution once; a session end warning to the affiliate; a closed month to the custodian; a receipt without cost for a tool not billed', async () => {
    const { hook, journal } = await setup();
    journal.record('device.fault', 'p1', { kind: 'thermal-runaway', text: 'Error:Thermal Runaway, system stopped! Heater_ID: 0' });
    journal.record('device.fault-cleared', 'p1', { kind: 'thermal-runaway', text: 'Error:Thermal Runaway, system stopped! Heater_ID: 0' });
    journal.record('device.fault-cleared', 'p1', { kind: 'thermal-runaway', text: 'cleared twice' }); // no alert open: nothing
    journal.record('device.fault-cleared', 'p2', { kind: 'mintemp', text: 'never raised' });
    journal.record('session.end-deferred', 't1', { sessionId: 's2', affiliateId: 'ada', reason: 'idle-timeout', busy: false, offInS: 300 });
    journal.record('billing.period-closed', null, { period: '2026-11', by: 'carol' });
    journal.record('session.ended', 't1', { sessionId: 's3', affiliateId: 'ada', reason: 'badge-out', durationS: 600, filamentG: 0, energyWh: 12 }); // billed: its receipt comes with the charge
    journal.record('session.ended', 'lathe', { sessionId: 's4', affiliateId: 'bo', reason: 'badge-out', durationS: 600, filamentG: 0, energyWh: 12 }); // not billed: with its end
    const bodies = (await hook.received(5)).map(verified);
    expect(bodies.map((b) => [b.kind, b.severity, b.title])).toEqual([
      ['fault', 'critical', 'p1: thermal-runaway'],
      ['fault-resolved', 'info', 'Resolved: p1: thermal-runaway'],
      ['switch-off-warning', 'warning', 't1 switches off in 5 min'],
      ['month-closed', 'info', 'Month 2026-11 closed'],
      ['receipt', 'info', 'Your session at lathe'],
    ]);
    expect(bodies[4]).toMatchObject({ affiliateId: 'bo', facts: { Time: '10 min', Energy: '12.0 Wh' } });
    expect(bodies[0]!.facts['Firmware says']).toBe('Error:Thermal Runaway, system stopped! Heater_ID: 0');
    expect(bodies[1]!.id).toBe(`${bodies[0]!.id}:resolved`);
    expect(bodies[2]!.affiliateId).toBe('ada');
  });

  it('reports a device offline longer than the configured minutes, and its return', async () => {
    const { hook, journal } = await setup({ offlineAfterMin: 0.01 });
    journal.record('device.lost', 'n1', { reason: 'no heartbeat' });
    const [offline] = (await hook.received(1)).map(verified);
    expect(offline).toMatchObject({ kind: 'offline', severity: 'warning', title: 'n1 is offline' });
    journal.record('device.reconnected', 'n1', {});
    const back = verified((await hook.received(2))[1]!);
    expect(back).toMatchObject({ kind: 'offline-resolved', id: `${offline!.id}:resolved` });
    // back before the minutes pass: nothing
    journal.record('device.lost', 'n1', {});
    journal.record('device.reconnected', 'n1', {});
    journal.record('billing.period-closed', null, { period: '2026-10', by: 'carol' });
    expect(verified((await hook.received(3))[2]!).kind).toBe('month-closed');
  });

  it('counts the minutes of a device lost before the gateway started from the start: back at once, it is not reported', async () => {
    const dir = tempDir('notify-restart');
    const before = Journal.open(dir, () => new Date(Date.now() - 3_600_000));
    before.record('device.lost', 'n1', { reason: 'no heartbeat' }); // an hour ago, before a restart
    before.close();
    const hook = await new HttpReceiver().start();
    stops.push(() => hook.stop());
    const journal = Journal.open(dir);
    stops.push(() => journal.close());
    const cfg = notificationsSchema.parse({ channels: { hook: { kind: 'webhook', url: hook.url, secret: SECRET } }, recipients: { maintainer: [{ channel: 'hook' }], custodian: [{ channel: 'hook' }] }, offlineAfterMin: 0.1 });
    const notifier = new Notifier(journal, cfg, { gateway: 'lab', baseDir: '.', rules: { billedTools: new Set(), minorUnit: 2 }, deviceIds: ['n1'] }, createLogger({ level: 'warn', format: 'json' }));
    notifier.attach();
    notifier.start();
    stops.push(() => notifier.stop());
    // an hour offline already: reported at once, it would be written within this moment
    await new Promise((r) => setTimeout(r, 100));
    journal.record('device.hello', 'n1', {}); // it answers as the gateway starts
    journal.record('billing.period-closed', null, { period: '2026-09', by: 'carol' });
    expect(verified((await hook.received(1))[0]!).kind).toBe('month-closed');
    await notifier.stop();
    expect(notifier.store.counts()).toMatchObject({ pending: 0, delivered: 1 });
  });

  it('delivers in order per destination through failures, and dead-letters with the reason after the last try', async () => {
    const { hook, journal, notifier, logs } = await setup({ maxAttempts: 3 });
    let failures = 2;
    hook.answer = (r) => {
      const id = (JSON.parse(r.body) as { id: string }).id;
      if (id === 'receipt:refused') return { status: 410, body: '{"error":"gone"}' };
      if (id === 'receipt:never') return { status: 503 };
      return failures-- > 0 ? { status: 503 } : { status: 200 };
    };
    for (const s of ['a', 'b', 'c']) journal.record('billing.charge', 't1', charge(s));
    await hook.received(5); // two refusals of a, then a, b, c
    expect(hook.requests.map((r) => verified(r).id)).toEqual(['receipt:a', 'receipt:a', 'receipt:a', 'receipt:b', 'receipt:c']);

    journal.record('billing.charge', 't1', charge('refused'));
    journal.record('billing.charge', 't1', charge('never'));
    journal.record('billing.charge', 't1', charge('after'));
    await hook.received(5 + 1 + 3 + 1);
    expect(hook.requests.slice(5).map((r) => verified(r).id)).toEqual(['receipt:refused', 'receipt:never', 'receipt:never', 'receipt:never', 'receipt:after']);
    const dead = notifier.store.deadLetters();
    expect(dead.map((d) => [d.key, d.attempts])).toEqual([
      ['receipt:refused', 1],
      ['receipt:never', 3],
    ]);
    expect(dead[0]!.lastError).toMatch(/HTTP 410 \{"error":"gone"\}/);
    expect(dead[1]!.lastError).toMatch(/HTTP 503/);
    expect(logs.some((l) => String(l.msg).includes('is a dead letter after 3 tries'))).toBe(true);
    expect(notifier.health().deadLetters).toBe(2);

    // put back once the receiver is fixed: delivered, in their order
    hook.answer = () => ({ status: 200 });
    expect(notifier.store.retryAllDead()).toBe(2);
    notifier.kick();
    await hook.received(12);
    expect(hook.requests.slice(10).map((r) => verified(r).id)).toEqual(['receipt:refused', 'receipt:never']);
    await notifier.stop(); // the delivery in flight is recorded
    expect(notifier.health()).toMatchObject({ backlog: 0, deadLetters: 0, delivered: 6 });
  });
});
