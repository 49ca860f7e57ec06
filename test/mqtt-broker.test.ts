/**
 * The embedded MQTT broker through real parts: mqtt.js clients over TCP (and TLS and
 * WebSocket) on a free loopback port, device credentials in a journal on disk, the typed
 * in-process API the gateway uses. And the pure parts: the topic rules, the packet-size
 * scanner, the rate limit, and the JSON Schema files for firmware authors.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { EmbeddedBroker } from '../gateway/src/mqtt/broker.js';
import { CommandError } from '../gateway/src/mqtt/commands.js';
import { brokerSchema } from '../gateway/src/mqtt/config.js';
import { MqttCredentials } from '../gateway/src/mqtt/credentials.js';
import { RateLimit } from '../gateway/src/mqtt/limits.js';
import { PacketSizeScanner } from '../gateway/src/mqtt/packet-guard.js';
import { jsonSchemaFiles, type Availability, type Badge, type Reply, type Status, type Telemetry } from '../gateway/src/mqtt/schemas.js';
import { DEVICE_TOPICS, mayPublish, maySubscribe, parseDeviceTopic, topicsFor } from '../gateway/src/mqtt/topics.js';
import { freePort, startTestGateway, tempDir, waitFor } from './helpers.js';

const BASE = 'ovn/test-lab';
const T = topicsFor(BASE);

// ---- harness ----

interface Harness {
  broker: EmbeddedBroker;
  journal: Journal;
  dir: string;
  url: string;
  secrets: Map<string, string>;
  logs: Record<string, unknown>[];
  warnings(reason: string): Record<string, unknown>[];
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startBroker(cfg: Record<string, unknown> = {}, devices = ['node-a', 'node-b'], opts: { revocationCheckMs?: number } = {}): Promise<Harness> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const dir = tempDir('mqtt-broker');
  const journal = Journal.open(dir);
  const creds = new MqttCredentials(journal);
  const secrets = new Map<string, string>();
  for (const id of devices) secrets.set(id, (await creds.add(id)).secret);
  const config = brokerSchema.parse({ listen: '127.0.0.1:0', baseTopic: BASE, connectionsPerMinute: 10_000, ...cfg });
  const broker = new EmbeddedBroker(config, journal, createLogger({ level: 'debug', format: 'json' }, sink), { baseDir: dir, ...opts });
  cleanups.push(() => journal.close());
  cleanups.push(() => broker.stop());
  await broker.start();
  return {
    broker,
    journal,
    dir,
    url: broker.addresses.tcp!,
    secrets,
    logs,
    warnings: (reason) => logs.filter((l) => l.level === 40 && l.reason === reason),
  };
}

/** A device client; rejects with mqtt.js' error (its `code` is the CONNACK return code) when refused. */
async function device(h: Harness, id: string, opts: IClientOptions = {}, url = h.url): Promise<MqttClient> {
  const c = await connectAsync(url, { clientId: id, username: id, password: h.secrets.get(id), reconnectPeriod: 0, connectTimeout: 5000, ...opts }, false);
  cleanups.push(() => c.endAsync(true));
  return c;
}

/** One of the gateway's own clients (a bridge, a dashboard), with the broker's in-process secret. */
async function internal(h: Harness, name = 'watcher'): Promise<MqttClient> {
  const { url, ...o } = h.broker.internalClientOptions(name);
  const c = await connectAsync(url, { ...o, reconnectPeriod: 0 }, false);
  cleanups.push(() => c.endAsync(true));
  return c;
}

/** Every message an internal client receives, as [topic, payload text, retained]. */
function record(c: MqttClient): [string, string, boolean][] {
  const got: [string, string, boolean][] = [];
  c.on('message', (topic, payload, packet) => got.push([topic, payload.toString(), packet.retain]));
  return got;
}

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the connection to be refused');
    },
    (err: Error & { code?: number }) => err,
  );

/** The SUBACK codes of a subscription (0x80: refused), whether mqtt.js resolves or rejects. */
const subscribeCodes = (c: MqttClient, filter: string, qos: 0 | 1 = 0) =>
  c.subscribeAsync(filter, { qos }).then(
    (granted) => granted.map((g) => g.qos),
    (err: Error & { packet?: { granted?: number[] } }) => err.packet?.granted ?? [-1],
  );

const telemetry = (seq: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ seq, bootId: 77, uptimeS: seq * 5, counters: { runtimeS: seq * 5, samples: seq * 50, energyWh: seq / 10 }, busy: seq % 2 === 0, ...extra });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- pure parts ----

describe('topics and access rules', () => {
  it('lays the topics out under the base topic', () => {
    expect([T.telemetry('a'), T.status('a'), T.badge('a'), T.command('a'), T.reply('a'), T.availability('a')]).toEqual([
      'ovn/test-lab/devices/a/telemetry',
      'ovn/test-lab/devices/a/status',
      'ovn/test-lab/devices/a/badge',
      'ovn/test-lab/devices/a/command',
      'ovn/test-lab/devices/a/reply',
      'ovn/test-lab/devices/a/availability',
    ]);
    expect([T.gatewayState, T.sessions, T.health, T.allDevices('telemetry')]).toEqual([
      'ovn/test-lab/gateway/state',
      'ovn/test-lab/gateway/sessions',
      'ovn/test-lab/gateway/health',
      'ovn/test-lab/devices/+/telemetry',
    ]);
    expect(parseDeviceTopic('ovn/test-lab/devices/node-a/telemetry', BASE)).toEqual({ deviceId: 'node-a', kind: 'telemetry' });
    for (const t of ['ovn/test-lab/devices/node-a', 'ovn/test-lab/devices//telemetry', 'ovn/test-lab/devices/node-a/telemetry/x', 'ovn/test-lab/devices/Node-A/telemetry', 'ovn/test-lab2/devices/a/telemetry', 'ovn/test-lab/devices/a/']) {
      expect(parseDeviceTopic(t, BASE), t).toBeNull();
    }
  });

  it('lets a device publish only its own telemetry, status, badge and reply', () => {
    const allowed = DEVICE_TOPICS.map((k) => `${BASE}/devices/node-a/${k}`);
    const refused = [
      T.command('node-a'),
      T.availability('node-a'),
      `${BASE}/devices/node-a/other`,
      `${BASE}/devices/node-a/telemetry/extra`,
      `${BASE}/devices/node-a`,
      T.telemetry('node-b'),
      T.status('node-b'),
      T.reply('node-b'),
      T.gatewayState,
      T.sessions,
      T.health,
      '$SYS/broker/new/clients',
      'ovn/other-lab/devices/node-a/telemetry',
      'ovn/test-lab-2/devices/node-a/telemetry',
      'node-a/telemetry',
      '#',
    ];
    for (const t of allowed) expect(mayPublish('node-a', t, BASE), t).toBe(true);
    for (const t of refused) expect(mayPublish('node-a', t, BASE), t).toBe(false);
    // the gateway's own clients: anywhere but the broker's $SYS
    for (const t of [...allowed, ...refused.filter((x) => !x.startsWith('$SYS'))]) expect(mayPublish('_gateway-bridge', t, BASE), t).toBe(true);
    expect(mayPublish('_gateway-bridge', '$SYS/broker/new/clients', BASE)).toBe(false);
  });

  it('lets a device subscribe to its own command topic and nothing else', () => {
    expect(maySubscribe('node-a', T.command('node-a'), BASE)).toBe(true);
    for (const f of [
      T.command('node-b'),
      `${BASE}/devices/node-a/+`,
      `${BASE}/devices/node-a/#`,
      `${BASE}/devices/+/command`,
      T.telemetry('node-a'),
      T.availability('node-a'),
      T.gatewayState,
      '#',
      '+/#',
      '$SYS/#',
      `${BASE}/#`,
    ]) {
      expect(maySubscribe('node-a', f, BASE), f).toBe(false);
    }
    for (const f of ['#', '$SYS/#', T.command('node-b'), `${BASE}/devices/+/telemetry`]) expect(maySubscribe('_gateway-x', f, BASE), f).toBe(true);
  });

  it('never lets one device reach another device, for any ids and topic kinds', () => {
    const id = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/);
    const kind = fc.constantFrom('telemetry', 'status', 'badge', 'reply', 'command', 'availability', 'x', '+', '#');
    fc.assert(
      fc.property(id, id, kind, (a, b, k) => {
        const topic = `${BASE}/devices/${b}/${k}`;
        expect(mayPublish(a, topic, BASE)).toBe(a === b && (DEVICE_TOPICS as readonly string[]).includes(k));
        expect(maySubscribe(a, topic, BASE)).toBe(a === b && k === 'command');
      }),
    );
  });
});

describe('packet size scanner', () => {
  /** An MQTT packet with a given body size: a header byte, the remaining length, the body. */
  const packet = (body: number) => {
    const len: number[] = [];
    let x = body;
    do {
      let b = x % 128;
      x = Math.floor(x / 128);
      if (x > 0) b |= 0x80;
      len.push(b);
    } while (x > 0);
    return Buffer.concat([Buffer.from([0x30, ...len]), Buffer.alloc(body, 0x41)]);
  };

  it('finds the first packet over the limit wherever the stream is cut', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 30 }), (bodies, cuts) => {
        const stream = Buffer.concat(bodies.map(packet));
        const sizes = bodies.map((b) => packet(b).length);
        const expected = sizes.find((s) => s > 1024) ?? null;
        const scanner = new PacketSizeScanner(1024);
        let verdict: number | null = null;
        let at = 0;
        for (const cut of [...cuts, stream.length]) {
          const chunk = stream.subarray(at, Math.min(stream.length, at + cut));
          at += chunk.length;
          verdict = scanner.feed(chunk);
          if (verdict !== null || at >= stream.length) break;
        }
        expect(verdict).toBe(expected);
      }),
    );
  });

  it('refuses a packet from its header, before its body arrives', () => {
    const big = packet(100_000);
    expect(new PacketSizeScanner(16_384).feed(big.subarray(0, 4))).toBe(big.length);
    expect(new PacketSizeScanner(16_384).feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff]))).toBe(-1);
  });
});

describe('rate limits', () => {
  it('allows a burst of the limit, then one every 60/n seconds, per address', () => {
    const r = new RateLimit(6);
    for (let i = 0; i < 6; i++) expect(r.take('10.0.0.1', 0)).toBe(true);
    expect(r.take('10.0.0.1', 0)).toBe(false);
    expect(r.take('10.0.0.2', 0)).toBe(true);
    expect(r.take('10.0.0.1', 9_999)).toBe(false);
    expect(r.take('10.0.0.1', 10_001)).toBe(true);
    expect(r.take('10.0.0.1', 10_002)).toBe(false);
    expect(r.take('10.0.0.1', 10_000_000)).toBe(true);
  });
});

describe('JSON Schema files for firmware authors', () => {
  it('are up to date with the zod schemas (npm run schemas)', () => {
    const dir = join(import.meta.dirname, '..', 'firmware-protocol', 'mqtt-schemas');
    const files = jsonSchemaFiles();
    expect(readdirSync(dir).filter((f) => f.endsWith('.json')).sort()).toEqual([...files.keys()].sort());
    for (const [name, text] of files) expect(readFileSync(join(dir, name), 'utf8'), `${name}: run npm run schemas`).toBe(text);
  });
});

// ---- the broker ----

describe('embedded broker: authentication', () => {
  it('lets a device in with its own id and secret, and refuses everyone else with the CONNACK code', async () => {
    const h = await startBroker();
    const ok = await device(h, 'node-a');
    expect(ok.connected).toBe(true);
    await waitFor(() => h.broker.isConnected('node-a'));

    const wrong = await refusal(device(h, 'node-a', { password: 'not-the-secret' }));
    expect(wrong.code).toBe(4);
    const otherSecret = await refusal(device(h, 'node-a', { password: h.secrets.get('node-b') }));
    expect(otherSecret.code).toBe(4);
    const unknown = await refusal(device(h, 'node-z', { password: h.secrets.get('node-a') }));
    expect(unknown.code).toBe(4);
    const anonymous = await refusal(connectAsync(h.url, { clientId: 'node-a', reconnectPeriod: 0 }, false));
    expect(anonymous.code).toBe(5);
    const noPassword = await refusal(connectAsync(h.url, { clientId: 'node-a', username: 'node-a', reconnectPeriod: 0 }, false));
    expect(noPassword.code).toBe(5);
    const mismatch = await refusal(device(h, 'node-a', { clientId: 'node-b' }));
    expect(mismatch.code).toBe(2);
    // the gateway's user name with a device's secret, and the in-process secret with a device's client id
    const fakeInternal = await refusal(connectAsync(h.url, { clientId: '_gateway-x', username: '_gateway', password: h.secrets.get('node-a'), reconnectPeriod: 0 }, false));
    expect(fakeInternal.code).toBe(4);
    const { password } = h.broker.internalClientOptions('x');
    const internalAsDevice = await refusal(connectAsync(h.url, { clientId: 'node-a', username: '_gateway', password, reconnectPeriod: 0 }, false));
    expect(internalAsDevice.code).toBe(2);

    expect(h.broker.health().rejected).toMatchObject({ 'bad-credentials': 4, anonymous: 2, 'client-id-mismatch': 2 });
    const warned = h.warnings('bad-credentials')[0]!;
    expect(warned.msg).toMatch(/refused the connection of "node-a" .* from 127\.0\.0\.1: bad user name or password \(CONNACK 4\)/);
    expect(JSON.stringify(h.logs)).not.toContain(h.secrets.get('node-a'));
    // the refusals did not disturb the device that is in
    expect(ok.connected).toBe(true);
    expect(h.broker.isConnected('node-a')).toBe(true);
  });

  it('stores only a salted hash, journals the change without the secret, and drops removed or rotated devices', async () => {
    const h = await startBroker({}, ['node-a', 'node-b'], { revocationCheckMs: 100 });
    const rows = h.journal.db.prepare('SELECT device_id, salt, hash FROM mqtt_credentials ORDER BY device_id').all() as { device_id: string; salt: string; hash: string }[];
    expect(rows.map((r) => r.device_id)).toEqual(['node-a', 'node-b']);
    expect(rows[0]!.salt).not.toBe(rows[1]!.salt);
    expect(rows[0]!.hash).toMatch(/^scrypt:4096:8:1:[0-9a-f]{64}$/);
    const stored = readFileSync(h.journal.file);
    for (const secret of h.secrets.values()) expect(stored.includes(secret)).toBe(false);
    const added = h.journal.events({ kind: 'mqtt.credentials-added' });
    expect(added.map((e) => [e.deviceId, e.data])).toEqual([
      ['node-a', { rotated: false }],
      ['node-b', { rotated: false }],
    ]);

    const creds = new MqttCredentials(h.journal);
    await expect(creds.add('node-a')).rejects.toThrow(/has MQTT credentials already; --rotate/);
    await expect(creds.add('Node A')).rejects.toThrow(/not a device id/);

    const a = await device(h, 'node-a');
    const b = await device(h, 'node-b');
    const closed = (c: MqttClient) => new Promise<void>((r) => c.once('close', () => r()));
    const aClosed = closed(a);
    const { secret } = await creds.add('node-a', { rotate: true });
    await aClosed;
    expect((await refusal(device(h, 'node-a'))).code).toBe(4);
    await device(h, 'node-a', { password: secret });

    const bClosed = closed(b);
    expect(creds.remove('node-b')).toBe(true);
    await bClosed;
    expect((await refusal(device(h, 'node-b'))).code).toBe(4);
    expect(h.journal.events({ kind: 'mqtt.credentials-removed' }).map((e) => e.deviceId)).toEqual(['node-b']);
    expect(h.logs.some((l) => l.msg === 'node-a: its MQTT credentials were replaced; disconnected')).toBe(true);
  });

  it('limits connection attempts per address before checking any password', async () => {
    const h = await startBroker({ connectionsPerMinute: 3 });
    for (let i = 0; i < 3; i++) await (await device(h, 'node-a')).endAsync();
    const refused = await refusal(device(h, 'node-a'));
    expect(refused.message).toMatch(/Couldn't connect/);
    expect(h.broker.health().rejected['rate-limited']).toBe(1);
    expect(h.warnings('rate-limited')[0]!.msg).toMatch(/refused a connection from 127\.0\.0\.1: more than 3 a minute/);
  });
});

describe('embedded broker: topic rules', () => {
  it('drops a device publish outside its own topics: acknowledged, delivered to no one, counted', async () => {
    const h = await startBroker();
    const watcher = await internal(h);
    await watcher.subscribeAsync('#', { qos: 1 });
    const seen = record(watcher);
    const events: [string, Telemetry][] = [];
    h.broker.on('telemetry', (id, t) => events.push([id, t]));

    const a = await device(h, 'node-a');
    const forbidden = [T.telemetry('node-b'), T.command('node-a'), T.availability('node-a'), T.gatewayState, `${BASE}/devices/node-a/other`, 'elsewhere/topic', '$SYS/x/new/clients'];
    for (const t of forbidden) await a.publishAsync(t, telemetry(1), { qos: 1 }); // each acknowledged
    await a.publishAsync(T.telemetry('node-a'), telemetry(2), { qos: 1 });

    await waitFor(() => seen.some(([t]) => t === T.telemetry('node-a')));
    await sleep(100);
    // the gateway's own retained state and the device's availability are there; nothing the device sent but its telemetry
    expect(seen.filter(([, p]) => p === telemetry(1))).toEqual([]);
    expect(seen.filter(([t]) => t.startsWith('$'))).toEqual([]);
    expect(seen.filter(([t]) => t.startsWith(`${BASE}/devices/`)).map(([t]) => t)).toEqual([T.availability('node-a'), T.telemetry('node-a')]);
    expect(events.map(([id, t]) => [id, t.seq])).toEqual([['node-a', 2]]);
    expect(h.broker.health().rejected['publish-denied']).toBe(forbidden.length);
    expect(h.warnings('publish-denied')[0]).toMatchObject({ device: 'node-a', topic: T.telemetry('node-b') });
    expect(h.warnings('publish-denied')[0]!.msg).toContain('node-a: may not publish on ovn/test-lab/devices/node-b/telemetry');
    expect(a.connected).toBe(true);
  });

  it("refuses subscriptions to other devices' topics, $SYS and wildcards with SUBACK 0x80", async () => {
    const h = await startBroker();
    const a = await device(h, 'node-a');
    expect(await subscribeCodes(a, T.command('node-a'), 1)).toEqual([1]);
    for (const filter of [T.command('node-b'), '$SYS/#', '#', `${BASE}/devices/+/command`, T.telemetry('node-b'), T.availability('node-a')]) {
      expect(await subscribeCodes(a, filter, 1), filter).toEqual([0x80]);
    }
    expect(h.broker.health().rejected['subscribe-denied']).toBe(6);
    expect(h.warnings('subscribe-denied')[0]!.msg).toContain(`node-a: may not subscribe to ${T.command('node-b')} (a device subscribes only to ${T.command('node-a')})`);

    // and a refused subscription really receives nothing
    const b = await device(h, 'node-b');
    await b.subscribeAsync(T.command('node-b'), { qos: 1 });
    const got = record(a);
    await h.broker.publish(T.command('node-b'), { transaction: 'x', command: 'rebirth' }, { qos: 1 });
    await sleep(100);
    expect(got).toEqual([]);
  });

  it('caps the subscriptions of one client', async () => {
    const h = await startBroker({ maxSubscriptionsPerClient: 3 });
    const w = await internal(h);
    for (const f of ['a/1', 'a/2', 'a/3', 'a/3']) expect(await subscribeCodes(w, f), f).toEqual([0]);
    expect(await subscribeCodes(w, 'a/4')).toEqual([0x80]);
    expect(h.broker.health().rejected['subscription-cap']).toBe(1);
    await w.unsubscribeAsync('a/1');
    expect(await subscribeCodes(w, 'a/4')).toEqual([0]);
  });
});

describe('embedded broker: payloads', () => {
  it('drops malformed and schema-invalid messages with a counter and a log line naming device, topic and problem, and keeps running', async () => {
    const h = await startBroker();
    const watcher = await internal(h);
    await watcher.subscribeAsync(`${BASE}/devices/#`, { qos: 1 });
    const seen = record(watcher);
    const telemetryEvents: Telemetry[] = [];
    const badges: Badge[] = [];
    h.broker.on('telemetry', (_id, t) => telemetryEvents.push(t));
    h.broker.on('badge', (_id, b) => badges.push(b));

    const a = await device(h, 'node-a');
    await a.publishAsync(T.telemetry('node-a'), 'this is not json', { qos: 1 });
    await a.publishAsync(T.telemetry('node-a'), Buffer.from([0xff, 0xfe, 0x00, 0x01]), { qos: 1 });
    await a.publishAsync(T.telemetry('node-a'), '', { qos: 0 });
    await a.publishAsync(T.telemetry('node-a'), telemetry(1, { counters: { runtimeS: 5, samples: 50, energyWh: 'lots' } }), { qos: 1 });
    await a.publishAsync(T.badge('node-a'), JSON.stringify({ uid: 'not hex' }), { qos: 1 });
    const b = await device(h, 'node-b'); // a second device: warnings are limited per device (5 in 10 s)
    await b.publishAsync(T.status('node-b'), JSON.stringify({ state: 'sleeping' }), { qos: 1, retain: true });
    await a.publishAsync(T.telemetry('node-a'), telemetry(2, { rssi: -60 }), { qos: 1 });
    await a.publishAsync(T.badge('node-a'), JSON.stringify({ uid: '04:a1:b2:c3' }), { qos: 1 });

    await waitFor(() => badges.length === 1);
    await sleep(100);
    const health = h.broker.health();
    expect(health.rejected.malformed).toBe(3);
    expect(health.rejected.invalid).toBe(3);
    expect(telemetryEvents.map((t) => t.seq)).toEqual([2]);
    expect(badges).toEqual([{ uid: '04A1B2C3' }]);
    // the invalid ones reached no subscriber either
    expect(seen.filter(([t]) => !t.endsWith('/availability')).map(([t, p]) => [t, JSON.parse(p) as unknown])).toEqual([
      [T.telemetry('node-a'), JSON.parse(telemetry(2, { rssi: -60 }))],
      [T.badge('node-a'), { uid: '04:a1:b2:c3' }],
    ]);

    const malformed = h.warnings('malformed');
    expect(malformed[0]).toMatchObject({ device: 'node-a', topic: T.telemetry('node-a') });
    expect(malformed[0]!.msg).toMatch(/^node-a: dropped a message on ovn\/test-lab\/devices\/node-a\/telemetry: not JSON .*"this is not json"/);
    expect(malformed[1]!.problem).toMatch(/not UTF-8/);
    expect(malformed[2]!.problem).toMatch(/empty payload/);
    const invalid = h.warnings('invalid');
    expect(invalid[0]!.problem).toMatch(/^not a valid telemetry message: counters\.energyWh: .*expected number/);
    expect(invalid[1]!.problem).toMatch(/^not a valid badge message: uid: not a hex UID/);
    expect(invalid[2]).toMatchObject({ device: 'node-b', topic: T.status('node-b') });
    expect(invalid[2]!.problem).toMatch(/^not a valid status message: state: /);

    // still serving: the same device and another one
    await a.publishAsync(T.telemetry('node-a'), telemetry(3), { qos: 1 });
    await b.publishAsync(T.telemetry('node-b'), telemetry(1), { qos: 1 });
    await waitFor(() => telemetryEvents.length === 3);
    expect(a.connected && b.connected).toBe(true);
  });

  it('logs a few warnings a window per device and says how many it held back', async () => {
    const h = await startBroker();
    const a = await device(h, 'node-a');
    const b = await device(h, 'node-b');
    for (let i = 0; i < 12; i++) await a.publishAsync(T.telemetry('node-a'), 'garbage', { qos: 1 });
    await b.publishAsync(T.telemetry('node-b'), 'garbage', { qos: 1 });
    await waitFor(() => h.broker.health().rejected.malformed === 13);
    expect(h.warnings('malformed').map((l) => l.device)).toEqual(['node-a', 'node-a', 'node-a', 'node-a', 'node-a', 'node-b']);
  });

  it('disconnects a client that sends a packet larger than maxPacketBytes, before the broker takes it', async () => {
    const h = await startBroker({ maxPacketBytes: 1024 });
    const watcher = await internal(h);
    await watcher.subscribeAsync('#', { qos: 1 });
    const seen = record(watcher);
    const events: Telemetry[] = [];
    h.broker.on('telemetry', (_id, t) => events.push(t));

    const a = await device(h, 'node-a');
    const closed = new Promise<void>((r) => a.once('close', () => r()));
    a.publish(T.telemetry('node-a'), telemetry(1, { note: 'x'.repeat(2000) }), { qos: 1 });
    await closed;
    await waitFor(() => h.broker.health().rejected['packet-too-large'] === 1);
    expect(h.warnings('packet-too-large')[0]!.msg).toMatch(/^node-a \(127\.0\.0\.1\) sent a packet of \d+ bytes, more than maxPacketBytes \(1024\); disconnected/);

    const b = await device(h, 'node-b');
    await b.publishAsync(T.telemetry('node-b'), telemetry(1, { note: 'x'.repeat(500) }), { qos: 1 });
    await waitFor(() => events.length === 1 && seen.some(([t]) => t === T.telemetry('node-b')));
    expect(seen.filter(([t]) => t.includes('/telemetry')).map(([t]) => t)).toEqual([T.telemetry('node-b')]);
  });
});

describe('embedded broker: status, will and availability', () => {
  const will = (session: number) => ({ topic: T.status('node-a'), payload: Buffer.from(JSON.stringify({ state: 'offline', session })), qos: 1 as const, retain: true });
  const birth = (c: MqttClient, session: number) => c.publishAsync(T.status('node-a'), JSON.stringify({ state: 'online', session }), { qos: 1, retain: true });

  it('turns the last will into availability offline, retained and published only on change; the retained status follows reconnections', async () => {
    const h = await startBroker();
    const watcher = await internal(h);
    await watcher.subscribeAsync(T.availability('node-a'), { qos: 1 });
    const availability = record(watcher);
    const events: Availability[] = [];
    h.broker.on('availability', (_id, a) => events.push(a));
    const statuses: Status[] = [];
    h.broker.on('status', (_id, s) => statuses.push(s));

    const a = await device(h, 'node-a', { will: will(1) });
    await birth(a, 1);
    for (let i = 1; i <= 5; i++) await a.publishAsync(T.telemetry('node-a'), telemetry(i), { qos: 1 });
    await waitFor(() => statuses.length === 1);
    expect(availability.map(([, p]) => (JSON.parse(p) as Availability).state)).toEqual(['online']);

    a.end(true); // the connection drops without DISCONNECT: the broker publishes the will
    await waitFor(() => statuses.length === 2);
    await sleep(100);
    expect(statuses).toEqual([
      { state: 'online', session: 1 },
      { state: 'offline', session: 1 },
    ]);
    expect(availability.map(([, p]) => (JSON.parse(p) as Availability).state)).toEqual(['online', 'offline']);
    expect(events.map((e) => e.state)).toEqual(['online', 'offline']);
    expect(h.broker.availabilityOf('node-a')).toMatchObject({ state: 'offline', reason: expect.stringMatching(/^disconnected from the broker/) });

    // a newcomer gets the retained availability and the retained will
    const late = await internal(h, 'late');
    const lateSeen = record(late);
    await late.subscribeAsync([T.availability('node-a'), T.status('node-a')], { qos: 1 });
    await waitFor(() => lateSeen.length === 2);
    expect(Object.fromEntries(lateSeen.map(([t, p, r]) => [t, [JSON.parse(p) as unknown, r]]))).toEqual({
      [T.availability('node-a')]: [expect.objectContaining({ state: 'offline' }), true],
      [T.status('node-a')]: [{ state: 'offline', session: 1 }, true],
    });

    // back with a new session: the retained status says so
    const again = await device(h, 'node-a', { will: will(2) });
    await birth(again, 2);
    await waitFor(() => statuses.length === 3);
    const fresh = await internal(h, 'fresh');
    const freshSeen = record(fresh);
    await fresh.subscribeAsync(T.status('node-a'), { qos: 1 });
    await waitFor(() => freshSeen.length === 1);
    expect(freshSeen[0]).toEqual([T.status('node-a'), JSON.stringify({ state: 'online', session: 2 }), true]);
    expect(availability.map(([, p]) => (JSON.parse(p) as Availability).state)).toEqual(['online', 'offline', 'online']);
  });

  it("ignores a stale will: the old connection's, arriving after the device reconnected", async () => {
    const h = await startBroker();
    const statuses: Status[] = [];
    h.broker.on('status', (_id, s) => statuses.push(s));
    const events: Availability[] = [];
    h.broker.on('availability', (_id, a) => events.push(a));

    const first = await device(h, 'node-a', { will: will(3) });
    await birth(first, 3);
    await waitFor(() => statuses.length === 1);
    // the device rebooted before the broker noticed: the new connection takes over the old one, whose will fires
    const second = await device(h, 'node-a', { will: will(4) });
    await birth(second, 4);
    await waitFor(() => statuses.length === 2);
    await waitFor(() => h.broker.health().rejected['stale-status'] === 1);
    expect(statuses).toEqual([
      { state: 'online', session: 3 },
      { state: 'online', session: 4 },
    ]);
    expect(h.broker.availabilityOf('node-a')?.state).toBe('online');
    expect(events.map((e) => e.state)).toEqual(['online']);
  });

  it('says a device is offline when it says so, and when it falls silent past heartbeatTimeoutS', async () => {
    const h = await startBroker({ heartbeatTimeoutS: 0.4 });
    const events: [string, Availability][] = [];
    h.broker.on('availability', (id, a) => events.push([id, a]));
    const a = await device(h, 'node-a');
    await a.publishAsync(T.telemetry('node-a'), telemetry(1), { qos: 1 });
    await waitFor(() => events.length === 1);
    await waitFor(() => events.length === 2, 3000);
    expect(events[1]![1]).toMatchObject({ state: 'offline', reason: 'published nothing for 0.4 s (heartbeatTimeoutS)' });
    await a.publishAsync(T.telemetry('node-a'), telemetry(2), { qos: 1 });
    await waitFor(() => events.length === 3);
    expect(events[2]![1].state).toBe('online');
    await a.publishAsync(T.status('node-a'), JSON.stringify({ state: 'offline' }), { qos: 1, retain: true });
    await waitFor(() => events.length === 4);
    expect(events[3]![1]).toMatchObject({ state: 'offline', reason: 'the device said it is offline' });
    expect(a.connected).toBe(true);
  });
});

describe('embedded broker: commands', () => {
  /** A device that answers every command on its reply topic. */
  async function responder(h: Harness, id: string, answer: (cmd: Record<string, unknown>) => Record<string, unknown> | null) {
    const c = await device(h, id);
    await c.subscribeAsync(T.command(id), { qos: 1 });
    const received: Record<string, unknown>[] = [];
    c.on('message', (_t, payload) => {
      const cmd = JSON.parse(payload.toString()) as Record<string, unknown>;
      received.push(cmd);
      const reply = answer(cmd);
      if (reply) c.publishAsync(T.reply(id), JSON.stringify({ transaction: cmd.transaction, ...reply }), { qos: 1 }).catch(() => {});
    });
    return { client: c, received };
  }

  it('sends a command and resolves with the reply carrying its transaction id', async () => {
    const h = await startBroker();
    const a = await responder(h, 'node-a', (cmd) => ({ ok: cmd.on === true, message: cmd.on ? 'relay on' : 'refused' }));
    const replies: Reply[] = [];
    h.broker.on('reply', (_id, r) => replies.push(r));

    const on = await h.broker.command('node-a', { command: 'relay', on: true });
    expect(on).toEqual({ transaction: a.received[0]!.transaction, ok: true, message: 'relay on' });
    const off = await h.broker.command('node-a', { command: 'enable', on: false });
    expect(off.ok).toBe(false);
    const indicated = await h.broker.command('node-a', { command: 'indicate', pattern: 'granted', durationMs: 1000 });
    expect(indicated.ok).toBe(false);
    expect(a.received).toEqual([
      { transaction: expect.any(String), command: 'relay', on: true },
      { transaction: expect.any(String), command: 'enable', on: false },
      { transaction: expect.any(String), command: 'indicate', pattern: 'granted', durationMs: 1000 },
    ]);
    expect(new Set(a.received.map((c) => c.transaction)).size).toBe(3);
    expect(replies).toHaveLength(3);
  });

  it('times out without a reply, ignores a reply from another device or a late one, and refuses a device that is not connected', async () => {
    const h = await startBroker();
    const late: { transaction?: unknown }[] = [];
    const a = await responder(h, 'node-a', (cmd) => {
      late.push(cmd);
      return null;
    });
    const b = await device(h, 'node-b');

    const t0 = Date.now();
    const pending = h.broker.command('node-a', { command: 'relay', on: true }, { timeoutMs: 300 });
    await waitFor(() => late.length === 1);
    // node-b answers with node-a's transaction on its own reply topic: not node-a's answer
    await b.publishAsync(T.reply('node-b'), JSON.stringify({ transaction: late[0]!.transaction, ok: true }), { qos: 1 });
    const err = await pending.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).reason).toBe('timeout');
    expect((err as CommandError).message).toMatch(/^no reply from node-a to relay within 300 ms \(transaction /);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);

    // the real answer, too late
    await a.client.publishAsync(T.reply('node-a'), JSON.stringify({ transaction: late[0]!.transaction, ok: true }), { qos: 1 });
    await waitFor(() => h.broker.health().unmatchedReplies === 2);

    await expect(h.broker.command('node-z', { command: 'rebirth' })).rejects.toMatchObject({ reason: 'offline', message: 'node-z is not connected to the broker' });
  });

  it('never delivers a command after its timeout, even to a device whose persistent session queued it', async () => {
    const h = await startBroker();
    const a = await device(h, 'node-a', { clean: false });
    await a.subscribeAsync(T.command('node-a'), { qos: 1 });
    const pending = h.broker.command('node-a', { command: 'relay', on: true }, { timeoutMs: 200 });
    a.stream.destroy(); // gone before it could acknowledge the command
    await expect(pending).rejects.toMatchObject({ reason: 'timeout' });
    await waitFor(() => !h.broker.isConnected('node-a'));

    const back = await device(h, 'node-a', { clean: false });
    const got = record(back);
    await sleep(300);
    expect(back.connected).toBe(true);
    expect(got).toEqual([]);
    expect(h.broker.health().expiredCommands).toBeGreaterThanOrEqual(1);
  });
});

describe('embedded broker: gateway state, health, other listeners', () => {
  it('keeps the gateway state retained: online after start, offline on a clean stop', async () => {
    const h = await startBroker();
    const w = await internal(h);
    const seen = record(w);
    await w.subscribeAsync([T.gatewayState, T.health], { qos: 1 });
    await waitFor(() => seen.length === 2);
    const state = seen.find(([t]) => t === T.gatewayState)!;
    expect(JSON.parse(state[1])).toMatchObject({ state: 'online', version: expect.any(String) });
    expect(state[2]).toBe(true);
    expect(JSON.parse(seen.find(([t]) => t === T.health)![1])).toMatchObject({ clients: { connected: 0, devices: 0 }, messages: { in: 0 }, rejected: { malformed: 0 } });

    await h.broker.stop();
    expect(JSON.parse(seen.at(-1)![1])).toMatchObject({ state: 'offline' });
    expect(seen.at(-1)![0]).toBe(T.gatewayState);
    await waitFor(() => !w.connected);
    await h.broker.stop(); // twice is fine
  });

  it('publishes session events, validated', async () => {
    const h = await startBroker();
    const w = await internal(h);
    const seen = record(w);
    await w.subscribeAsync(T.sessions, { qos: 1 });
    const event = { event: 'ended' as const, sessionId: 's1', toolId: 'printer', affiliateId: 'ada', useType: 'commercial', at: new Date().toISOString(), reason: 'badge-out', usage: { durationS: 60, activeS: 30, energyWh: 1.5, filamentG: 2 } };
    await h.broker.publishSessionEvent(event);
    await waitFor(() => seen.length === 1);
    expect(JSON.parse(seen[0]![1])).toEqual(event);
    expect(() => h.broker.publishSessionEvent({ ...event, at: 'yesterday' })).toThrow();
  });

  it('serves MQTT over TLS and WebSocket with the same rules', async () => {
    const dir = tempDir('mqtt-tls');
    const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    if (made.status !== 0 && process.env.CI !== 'true') return; // no openssl on this machine
    const h = await startBroker({ tls: { port: await freePort(), cert, key }, websocket: { port: await freePort() } });
    const events: string[] = [];
    h.broker.on('telemetry', (id) => events.push(id));

    const overTls = await device(h, 'node-a', { ca: readFileSync(cert) }, h.broker.addresses.tls!);
    await overTls.publishAsync(T.telemetry('node-a'), telemetry(1), { qos: 1 });
    const overWs = await device(h, 'node-b', {}, h.broker.addresses.websocket!);
    await overWs.publishAsync(T.telemetry('node-b'), telemetry(1), { qos: 1 });
    await waitFor(() => events.length === 2);
    expect(events.sort()).toEqual(['node-a', 'node-b']);
    expect((await refusal(device(h, 'node-a', { password: 'wrong' }, h.broker.addresses.websocket!))).code).toBe(4);
    expect(await subscribeCodes(overWs, '#')).toEqual([0x80]);
  });

  it('refuses to start on a port in use, naming the setting', async () => {
    const h = await startBroker();
    const port = Number(new URL(h.url).port);
    const journal = Journal.open(tempDir('mqtt-busy'));
    cleanups.push(() => journal.close());
    const other = new EmbeddedBroker(brokerSchema.parse({ listen: `127.0.0.1:${port}`, baseTopic: BASE }), journal, createLogger({ level: 'silent', format: 'json' }));
    await expect(other.start()).rejects.toThrow(`mqtt.listen: cannot listen on 127.0.0.1:${port}: address already in use`);
  });
});

describe('the gateway with an mqtt section', () => {
  it('starts the broker before the devices and stops it after them', async () => {
    const gw = await startTestGateway({ mqtt: { listen: '127.0.0.1:0', baseTopic: BASE } });
    try {
      expect(gw.broker?.addresses.tcp).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
      const { url, ...o } = gw.broker!.internalClientOptions('test');
      const c = await connectAsync(url, { ...o, reconnectPeriod: 0 }, false);
      cleanups.push(() => c.endAsync(true));
      const seen = record(c);
      await c.subscribeAsync(T.gatewayState, { qos: 1 });
      await waitFor(() => seen.length === 1);
      expect(JSON.parse(seen[0]![1])).toMatchObject({ state: 'online' });
    } finally {
      await gw.stop();
    }
    expect(gw.broker!.addresses.tcp).toBeNull();
    expect(gw.logs.some((l) => l.msg === 'MQTT broker stopped')).toBe(true);
  });
});

describe('ovn-gateway devices add-mqtt / remove-mqtt', () => {
  it('prints the secret once, which then connects, and journals without it', { timeout: 120_000 }, async () => {
    const dir = tempDir('mqtt-cli');
    const config = join(dir, 'lab.yaml');
    writeFileSync(config, `gateway: { dataDir: ./data }\nmqtt: { listen: "127.0.0.1:0", baseTopic: ovn/cli-lab }\n`);
    const cli = join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js');
    const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

    expect(run('devices', 'list-mqtt', '--config', config).stdout).toBe('no device has MQTT credentials (devices add-mqtt <id> makes them)\n');
    const added = run('devices', 'add-mqtt', 'laser-1', '--config', config);
    expect(added.stderr).toBe('');
    expect(run('devices', 'list-mqtt', '--config', config).stdout).toMatch(/^device\tcreated\nlaser-1\t\d{4}-\d\d-\d\dT[^\n]+\n$/);
    expect(added.status).toBe(0);
    const secret = /password:\s+(\S+)/.exec(added.stdout)?.[1];
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(added.stdout).toContain('ovn/cli-lab/devices/laser-1/');
    const again = run('devices', 'add-mqtt', 'laser-1', '--config', config);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/has MQTT credentials already; --rotate/);

    const journal = Journal.open(join(dir, 'data'));
    cleanups.push(() => journal.close());
    const data = JSON.stringify(journal.events({ kind: 'mqtt.credentials-added' }));
    expect(data).toContain('laser-1');
    expect(data).not.toContain(secret);
    expect(existsSync(join(dir, 'data', 'journal.sqlite'))).toBe(true);
    expect(readFileSync(join(dir, 'data', 'journal.sqlite')).includes(secret!)).toBe(false);
    const broker = new EmbeddedBroker(brokerSchema.parse({ listen: '127.0.0.1:0', baseTopic: 'ovn/cli-lab' }), journal, createLogger({ level: 'error', format: 'json' }));
    cleanups.push(() => broker.stop());
    await broker.start();
    const c = await connectAsync(broker.addresses.tcp!, { clientId: 'laser-1', username: 'laser-1', password: secret, reconnectPeriod: 0 }, false);
    cleanups.push(() => c.endAsync(true));
    expect(c.connected).toBe(true);

    const removed = run('devices', 'remove-mqtt', 'laser-1', '--config', config);
    expect(removed.stdout).toMatch(/laser-1: MQTT credentials removed/);
    expect(new MqttCredentials(journal).list()).toEqual([]);
  });
});
