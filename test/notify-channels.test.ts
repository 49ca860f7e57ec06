/**
 * Every channel against a real receiver: e-mail to an aiosmtpd server that requires STARTTLS
 * and AUTH (the mail parsed by Python's email package: headers, both parts, amounts); ntfy and
 * Matrix to HTTP endpoints that check method, path, headers and body as their documentation
 * says; and `ovn-gateway notify test|status|dead-letters|retry` on them. E-mail over implicit
 * TLS (port 465 style) from a running gateway: the month-closed mail with its statement CSV.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AccessStore } from '../gateway/src/access/store.js';
import { Billing } from '../gateway/src/billing/billing.js';
import { billingSchema } from '../gateway/src/billing/config.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { notificationsSchema } from '../gateway/src/notify/config.js';
import { Notifier } from '../gateway/src/notify/outbox.js';
import { connect } from 'node:net';
import { adminHeaders, freePort, killCliChildren, runCli, tempDir } from './helpers.js';
import { MailCatcher } from '../simulators/src/mail/mail-catcher.js';
import { AIOSMTPD_PYTHON, charge, HttpReceiver, SmtpReceiver } from './notify-receivers.js';

const skipWithoutSmtp = !AIOSMTPD_PYTHON && process.env.CI !== 'true';

const stops: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  killCliChildren();
  for (const s of stops.splice(0).reverse()) await s();
});

function notifier(dir: string, channels: Record<string, unknown>, recipients: Record<string, unknown>) {
  const journal = Journal.open(join(dir, 'data'));
  stops.push(() => journal.close());
  const cfg = notificationsSchema.parse({ channels, recipients, backoff: { initialMs: 20, maxMs: 100 } });
  const waiting: { text: string; resolve: () => void }[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, done) {
      for (const w of waiting.filter((w) => c.toString().includes(w.text))) w.resolve();
      done();
    },
  });
  const n = new Notifier(journal, cfg, { gateway: 'Lab One', baseDir: dir, rules: { billedTools: new Set(['t1']), minorUnit: 2 }, deviceIds: [] }, createLogger({ level: 'warn', format: 'json' }, sink));
  n.attach();
  n.start();
  stops.push(() => n.stop());
  /** Resolves when the notifier logs a line with this text. */
  const logged = (text: string) => new Promise<void>((resolve) => waiting.push({ text, resolve }));
  return { journal, n, logged };
}

/** `ovn-gateway <args>` to its end: its exit code and output. */
async function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = runCli(args);
  const code = await new Promise<number | null>((resolve) => p.on('exit', resolve));
  return { code, out: p.lines.join('\n') };
}

describe.skipIf(skipWithoutSmtp)('notifications by e-mail, to aiosmtpd over STARTTLS with AUTH', () => {
  const smtp = new SmtpReceiver();
  beforeAll(() => smtp.start());
  afterAll(() => smtp.stop());

  it('sends the affiliate a receipt to the address in the allow-list and the maintainer the fault, each with a text and an HTML part', async () => {
    const dir = tempDir('notify-mail');
    const mail = { kind: 'email', host: '127.0.0.1', port: smtp.port, tls: 'starttls', user: 'gateway', password: 's3cret', caFile: smtp.ca, from: 'Lab One <gateway@lab.example.org>' };
    const { journal } = notifier(dir, { mail }, { affiliate: [{ channel: 'mail' }], maintainer: [{ channel: 'mail', to: 'maint@lab.example.org' }] });
    new AccessStore(journal).put({ id: 'ada', name: 'Ada Lovelace', email: 'ada@example.org' });
    new AccessStore(journal).put({ id: 'bo', name: 'Bo' }); // no address: no receipt by mail
    const before = smtp.messages().length;
    journal.record('billing.charge', 't1', charge('s-mail'));
    journal.record('billing.charge', 't1', charge('s-bo', 'bo'));
    journal.record('device.fault', 'p1', { kind: 'thermal-runaway', text: 'Error:Thermal Runaway, system stopped! Heater_ID: 0' });
    // two destinations, each in its own order: which arrives first is not fixed
    const got = (await smtp.received(before + 2)).slice(before);
    const receipt = got.find((m) => m.envelopeTo.includes('ada@example.org'));
    const fault = got.find((m) => m.envelopeTo.includes('maint@lab.example.org'));

    expect(receipt).toMatchObject({ envelopeTo: ['ada@example.org'], login: 'gateway', tls: true, contentType: 'multipart/alternative' });
    expect(receipt!.headers).toMatchObject({ from: 'Lab One <gateway@lab.example.org>', to: 'ada@example.org', subject: 'Receipt: t1, 12.34 CAD', 'x-ovn-kind': 'receipt', 'x-ovn-severity': 'info' });
    expect(receipt!.headers['message-id']).toMatch(/^<[0-9a-f]{32}@Lab-One\.ovn-gateway>$/);
    expect(receipt!.text).toContain('Your session at t1 cost 12.34 CAD (community use).');
    expect(receipt!.text).toMatch(/Time: 1 h 30 min\r?\nFilament: 42\.5 g\r?\nEnergy: 180\.3 Wh\r?\nCost: 12\.34 CAD/);
    expect(receipt!.text).toContain('to co-owner (bo): 1.92 CAD');
    expect(receipt!.html).toContain('<tr><th align="left">Cost</th><td>12.34 CAD</td></tr>');

    expect(fault).toMatchObject({ envelopeTo: ['maint@lab.example.org'], tls: true });
    expect(fault!.headers).toMatchObject({ subject: 'p1: thermal-runaway', 'x-ovn-severity': 'critical', 'x-priority': '1 (Highest)' });
    expect(fault!.text).toContain('Firmware says: Error:Thermal Runaway, system stopped! Heater_ID: 0');
  });

  it('a refused login is a dead letter at once with the server\'s words; notify status, dead-letters, retry and test say so', { timeout: 90_000 }, async () => {
    const dir = tempDir('notify-mail-cli');
    const mail = { kind: 'email', host: '127.0.0.1', port: smtp.port, tls: 'starttls', user: 'gateway', password: 'wrong', caFile: smtp.ca, from: 'gateway@lab.example.org' };
    const recipients = { custodian: [{ channel: 'mail', to: 'carol@lab.example.org' }] };
    const { journal, n, logged } = notifier(dir, { mail }, recipients);
    const dead = logged('is a dead letter after 1 tries');
    journal.record('billing.period-closed', null, { period: '2026-11', by: 'carol' });
    await dead;
    await n.stop();
    const config = join(dir, 'lab.yaml');
    writeFileSync(config, JSON.stringify({ gateway: { dataDir: 'data' }, notifications: { channels: { mail }, recipients } }));
    expect((await cli(['notify', 'status', '-c', config])).out).toBe('pending 0, delivered 0, dead letters 1');
    const listed = await cli(['notify', 'dead-letters', '-c', config]);
    expect(listed.out).toMatch(/^seq\tchannel\tkind\tkey\ttries\treason\n1\tmail carol@lab\.example\.org\tmonth-closed\tmonth-closed:2026-11\t1\tSMTP 127\.0\.0\.1:\d+: .*535/);
    expect((await cli(['notify', 'test', 'mail', '-c', config])).code).toBe(1);
    // the password fixed: the test goes through, and the dead letter goes back in its queue
    writeFileSync(config, JSON.stringify({ gateway: { dataDir: 'data' }, notifications: { channels: { mail: { ...mail, password: 's3cret' } }, recipients } }));
    const before = smtp.messages().length;
    const test = await cli(['notify', 'test', 'mail', '-c', config]);
    expect(test).toEqual({ code: 0, out: 'sent a test message on mail (email to carol@lab.example.org)' });
    const [sent] = (await smtp.received(before + 1)).slice(before);
    expect(sent!.headers.subject).toBe('Test from ovn-gateway');
    expect((await cli(['notify', 'retry', '1', '-c', config])).out).toBe('1: back in the queue of mail carol@lab.example.org');
    expect((await cli(['notify', 'status', '-c', config])).out).toMatch(/^pending 1 \(oldest from .*\), delivered 0, dead letters 0$/);
  });
});

describe('notifications by ntfy and Matrix, to endpoints shaped like theirs', () => {
  it('publishes to ntfy as JSON with topic, title, message, priority and tags, with the access token', async () => {
    const ntfy = await new HttpReceiver().start();
    stops.push(() => ntfy.stop());
    const { journal } = notifier(tempDir('notify-ntfy'), { phone: { kind: 'ntfy', url: ntfy.url, topic: 'lab-alerts', token: 'tk_abc' } }, { maintainer: [{ channel: 'phone' }] });
    journal.record('device.fault', 'p1', { kind: 'thermal-runaway', text: 'Thermal Runaway — E1' });
    const [r] = await ntfy.received(1);
    // https://docs.ntfy.sh/publish/#publish-as-json: POST to the root URL
    expect(r).toMatchObject({ method: 'POST', path: '/' });
    expect(r!.headers['content-type']).toBe('application/json');
    expect(r!.headers.authorization).toBe('Bearer tk_abc');
    expect(JSON.parse(r!.body)).toEqual({ topic: 'lab-alerts', title: 'p1: thermal-runaway', message: expect.stringContaining('Firmware says: Thermal Runaway — E1'), priority: 5, tags: ['rotating_light', 'fault'] });
  });

  it('sends an m.room.message with PUT and a transaction id that stays the same when the homeserver asks to wait', async () => {
    const hs = await new HttpReceiver().start();
    stops.push(() => hs.stop());
    let first = true;
    hs.answer = () => (first ? ((first = false), { status: 429, body: '{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":30}' }) : { status: 200, body: '{"event_id":"$abc"}' });
    const { journal, n } = notifier(tempDir('notify-matrix'), { room: { kind: 'matrix', homeserver: `${hs.url}/`, accessToken: 'syt_token', roomId: '!lab:example.org' } }, { custodian: [{ channel: 'room' }] });
    journal.record('billing.period-closed', null, { period: '2026-11', by: 'carol' });
    const [refused, sent] = await hs.received(2);
    for (const r of [refused!, sent!]) {
      expect(r.method).toBe('PUT');
      expect(r.path).toMatch(/^\/_matrix\/client\/v3\/rooms\/!lab%3Aexample\.org\/send\/m\.room\.message\/ovn-[0-9a-f]{32}$/);
      expect(r.headers.authorization).toBe('Bearer syt_token');
    }
    expect(sent!.path).toBe(refused!.path);
    expect(JSON.parse(sent!.body)).toEqual({ msgtype: 'm.notice', body: expect.stringContaining('Month 2026-11 closed'), format: 'org.matrix.custom.html', formatted_body: expect.stringContaining('<h4>Month 2026-11 closed</h4>') });
    await n.stop();
    expect(n.health()).toMatchObject({ backlog: 0, delivered: 1 });
  });
});

describe("the simulated lab's mail catcher", () => {
  it('catches what the e-mail channel sends in plain text: a switch-off warning for Ada, the thermal runaway and its resolution, the closed month', async () => {
    const catcher = await MailCatcher.start({ smtp: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 } });
    stops.push(() => catcher.close());
    const [host, port] = catcher.smtpAddress.split(':') as [string, string];
    const mail = { kind: 'email', host, port: Number(port), tls: 'none', from: 'Simulated lab <gateway@simulated-lab.example>' };
    const { journal } = notifier(tempDir('notify-catcher'), { mail }, { affiliate: [{ channel: 'mail' }], maintainer: [{ channel: 'mail', to: 'maintainers@simulated-lab.example' }], custodian: [{ channel: 'mail', to: 'custodian@simulated-lab.example' }] });
    new AccessStore(journal).put({ id: 'ada', name: 'Ada Lovelace', email: 'ada@simulated-lab.example' });
    const four = new Promise<void>((resolve) => catcher.onMail(() => catcher.caught.length === 4 && resolve()));
    journal.record('session.end-deferred', 'printer', { sessionId: 's1', affiliateId: 'ada', reason: 'badge-out', busy: true, offInS: 0 }); // her own end: no warning
    journal.record('session.end-deferred', 'printer', { sessionId: 's1', affiliateId: 'ada', reason: 'idle-timeout', busy: false, offInS: 60 });
    journal.record('device.fault', 'mk3s', { kind: 'thermal-runaway', text: 'Error:Thermal Runaway, system stopped! Heater_ID: 0' });
    journal.record('device.fault-cleared', 'mk3s', { kind: 'thermal-runaway', text: 'Error:Thermal Runaway, system stopped! Heater_ID: 0' });
    journal.record('billing.period-closed', null, { period: '2026-11', by: 'custodian' });
    await four;
    // one queue per address: Ada's and the maintainers' arrive in their own order
    expect(new Set(catcher.caught.map((m) => `${m.to.join()}: ${m.subject}`))).toEqual(
      new Set([
        'ada@simulated-lab.example: printer switches off in 1 min',
        'maintainers@simulated-lab.example: mk3s: thermal-runaway',
        'maintainers@simulated-lab.example: Resolved: mk3s: thermal-runaway',
        'custodian@simulated-lab.example: Month 2026-11 closed',
      ]),
    );
    const maintainers = catcher.caught.filter((m) => m.to.includes('maintainers@simulated-lab.example')).map((m) => m.subject);
    expect(maintainers).toEqual(['mk3s: thermal-runaway', 'Resolved: mk3s: thermal-runaway']);
    // the page lists them, each readable as sent
    const alert = catcher.caught.find((m) => m.subject === 'mk3s: thermal-runaway')!;
    expect(await (await fetch(`${catcher.url}/`)).text()).toContain(`<a href="/messages/${alert.n}.eml">mk3s: thermal-runaway</a>`);
    const raw = await (await fetch(`${catcher.url}/messages/${alert.n}.eml`)).text();
    expect(raw).toContain('Content-Type: multipart/alternative');
    expect(raw).toContain('Error:Thermal Runaway, system stopped!');
  });
});

describe.skipIf(skipWithoutSmtp)('notifications by e-mail over implicit TLS (port 465 style), from the gateway', () => {
  const smtp = new SmtpReceiver('implicit');
  beforeAll(() => smtp.start());
  afterAll(() => smtp.stop());

  it('sends the custodian the month-closed mail with its statement CSV and its invoices attached, over TLS from the first byte with AUTH; a plain-text client gets nowhere', { timeout: 60_000 }, async () => {
    // what the server speaks first is TLS: a plain connection reads no SMTP greeting
    const plain = await new Promise<string>((resolve) => {
      const s = connect(smtp.port, '127.0.0.1');
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.setTimeout(500, () => (s.destroy(), resolve(got)));
      s.on('error', () => resolve(got));
      s.on('close', () => resolve(got));
    });
    expect(plain).not.toMatch(/^220 /);

    const dir = tempDir('notify-smtps');
    const config = join(dir, 'lab.yaml');
    writeFileSync(
      config,
      `gateway: { dataDir: data, log: { format: json } }
billing: { currency: CAD }
notifications:
  channels:
    mail: { kind: email, host: 127.0.0.1, port: ${smtp.port}, tls: implicit, user: gateway, password: s3cret, caFile: ${smtp.ca}, from: "Lab One <gateway@lab.example.org>" }
  recipients: { custodian: [{ channel: mail, to: treasurer@lab.example.org }] }
  backoff: { initialMs: 20, maxMs: 200 }
`,
    );
    // a session of January's, charged: closing the month gives Ada an invoice
    const journal = Journal.open(join(dir, 'data'));
    const billing = new Billing(billingSchema.parse({ currency: 'CAD', tools: { t1: { tariffs: { community: { hourlyRate: '2.00', split: { maintenance: 60, infrastructure: 40, payback: 0 } } } } } }), journal);
    journal.durably(() => billing.charge({ sessionId: 's-jan', toolId: 't1', affiliateId: 'ada', useType: 'community', startedAt: '2026-01-20T10:00:00.000Z', endedAt: '2026-01-20T11:30:00.000Z', durationS: 5400, activeS: 5400, filamentG: 0 }));
    journal.close();
    const port = await freePort();
    const auth = adminHeaders(join(dir, 'data')).headers as Record<string, string>;
    const gateway = runCli(['run', '--config', config, '--http-port', String(port)]);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      gateway.stdout.on('data', (d: Buffer) => (out += d.toString()).includes('HTTP API on') && resolve());
      gateway.on('exit', (code) => reject(new Error(`the gateway exited with ${code}:\n${out}`)));
    });
    const before = smtp.messages().length;
    expect((await fetch(`http://127.0.0.1:${port}/api/billing/periods/2026-01/close`, { method: 'POST', headers: auth })).status).toBe(200);
    // the closed month, and the month before this one, ready to close
    const got = (await smtp.received(before + 2)).slice(before);
    const closed = got.find((m) => m.headers.subject === 'Month 2026-01 closed')!;
    expect(closed).toMatchObject({ envelopeTo: ['treasurer@lab.example.org'], login: 'gateway', tls: true, contentType: 'multipart/mixed' });
    expect(closed.headers['x-ovn-kind']).toBe('month-closed');
    expect(closed.text).toContain('closed 2026-01: its statement is final');
    expect(closed.html).toContain('<table>');
    expect(closed.attachments.map((a) => [a.filename, a.contentType])).toEqual([
      ['statement-2026-01.csv', 'text/csv'],
      ['invoice-2026-0001.pdf', 'application/pdf'],
    ]);
    expect(closed.attachments[0]!.content!.split(/\r?\n/)[0]).toMatch(/^period,/);
    expect(got.find((m) => m.headers['x-ovn-kind'] === 'month-ready')!.attachments).toEqual([]);
    const exited = new Promise((r) => gateway.on('exit', r));
    gateway.kill('SIGTERM');
    await exited;
  });
});
