/**
 * Networked badge readers over MQTT, through real parts: an aedes broker on a TCP port, an
 * mqtt.js client playing the reader (an ESP32 with an RC522), the gateway's MQTT reader
 * device, a journal on disk.
 */
import { Aedes } from 'aedes';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { mqttBadgeReaderSchema } from '../gateway/src/devices/mqtt-reader/config.js';
import { MqttBadgeReader, RECONNECT_MS } from '../gateway/src/devices/mqtt-reader/reader.js';
import type { BadgeRead } from '../gateway/src/devices/tool-io.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { tempDir, waitFor } from './helpers.js';

const TOPIC = 'lab/readers/printer-door/badge';
const STATUS = 'lab/readers/printer-door/state';

/** An in-memory broker on 127.0.0.1; closing it drops every client connection, like a broker that dies. */
class TestBroker {
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly aedes: Aedes,
    private readonly server: Server,
  ) {
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(port = 0, opts: ConstructorParameters<typeof Aedes>[0] = {}): Promise<TestBroker> {
    const aedes = await Aedes.createBroker(opts);
    const server = createServer(aedes.handle);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return new TestBroker(aedes, server);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface Harness {
  reader: MqttBadgeReader;
  journal: Journal;
  logs: Record<string, unknown>[];
  badges: BadgeRead[];
  detail: () => Detail;
  kinds: () => string[];
}

interface Detail {
  url: string;
  broker: { connected: boolean; subscribed: boolean };
  readerStatus: string | null;
  counters: { taps: number; repeats: number; malformed: number; retained: number; reconnects: number };
  lastTapAt: string | null;
  lastMalformed: { problem: string } | null;
}

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A gateway-side reader device on `url`, started; resolves once it has subscribed (unless `subscribed: false`). */
async function startReader(url: string, cfg: Record<string, unknown> = {}, opts: { monotonicMs?: () => number; subscribed?: boolean } = {}): Promise<Harness> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const journal = Journal.open(tempDir('mqtt-reader'));
  const config = mqttBadgeReaderSchema.parse({ id: 'door-reader', kind: 'mqtt-badge-reader', url, topic: TOPIC, ...cfg });
  const reader = new MqttBadgeReader(config, journal, createLogger({ level: 'debug', format: 'json' }, sink), { clock: opts.monotonicMs });
  const badges: BadgeRead[] = [];
  reader.on('badge', (b) => badges.push(b));
  cleanups.push(async () => {
    await reader.stop();
    journal.close();
  });
  reader.start();
  const detail = () => reader.health().detail as unknown as Detail;
  if (opts.subscribed !== false) await waitFor(() => detail().broker.subscribed, 10_000, 'reader subscribed');
  return { reader, journal, logs, badges, detail, kinds: () => journal.events({ deviceId: 'door-reader' }).map((e) => e.kind) };
}

/** The networked reader: an MQTT client publishing taps, as the ESP32 would. */
async function connectReaderSim(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const sim = await connectAsync(url, { clientId: `esp32-${Math.random().toString(16).slice(2, 10)}`, reconnectPeriod: 200, ...opts });
  cleanups.push(() => sim.endAsync(true));
  return sim;
}

const tap = (sim: MqttClient, payload: string | Buffer, retain = false) => sim.publishAsync(TOPIC, payload, { qos: 1, retain });

const warnings = (h: Harness) => h.logs.filter((l) => l.level === 40 && typeof l.problem === 'string');

describe('MQTT badge reader', () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await TestBroker.start();
  });

  afterAll(async () => {
    await broker.close();
  });

  it('turns JSON and plain-text taps into badge events with the normalised UID', async () => {
    const h = await startReader(broker.url, { repeatGapMs: 0 });
    const sim = await connectReaderSim(broker.url);
    await tap(sim, JSON.stringify({ uid: '04a1b2c3', reader: 'esp32-door', ts: '2026-11-24T15:03:37Z' }));
    await tap(sim, '04:a1:b2:c4');
    await tap(sim, '04-A1-B2-C5\n');
    await tap(sim, '04 a1 b2 c6 d7 e8 f9');
    await tap(sim, JSON.stringify({ uid: '0a', ts: 1_732_460_617 }));
    await waitFor(() => h.badges.length === 5, 5000, 'five badges');
    expect(h.badges).toEqual(['04A1B2C3', '04A1B2C4', '04A1B2C5', '04A1B2C6D7E8F9', '0A'].map((uid) => ({ uid, reader: 'door-reader' })));
    const d = h.detail();
    expect(d.counters).toMatchObject({ taps: 5, repeats: 0, malformed: 0 });
    expect(d.lastTapAt).not.toBeNull();
    expect(h.reader.health()).toMatchObject({ id: 'door-reader', kind: 'mqtt-badge-reader', state: 'online', lastSeen: expect.any(String) });
    expect(h.kinds()).toEqual(['device.connected']);
  });

  it('drops the same UID within repeatGapMs of its last read (a held card) and counts it, and passes later taps on', async () => {
    let clock = 0;
    const h = await startReader(broker.url, { repeatGapMs: 1000 }, { monotonicMs: () => clock });
    const sim = await connectReaderSim(broker.url);
    const step = async (payload: string, at: number, expected: { taps: number; repeats: number }) => {
      clock = at;
      await tap(sim, payload);
      await waitFor(() => h.detail().counters.taps + h.detail().counters.repeats === expected.taps + expected.repeats, 5000, `tap at ${at}`);
      expect(h.detail().counters).toMatchObject(expected);
    };
    await step('04A1B2C3', 0, { taps: 1, repeats: 0 });
    await step('04a1b2c3', 10, { taps: 1, repeats: 1 }); // the same card, as the reader repeats it
    await step('0BADC0DE', 20, { taps: 2, repeats: 1 }); // another card is not a repeat
    await step('04A1B2C3', 1009, { taps: 2, repeats: 2 }); // still held: 999 ms after its last read
    await step('04A1B2C3', 2008, { taps: 2, repeats: 3 });
    await step('04A1B2C3', 3008, { taps: 3, repeats: 3 }); // taken away and tapped again
    await step('0BADC0DE', 3009, { taps: 4, repeats: 3 });
    expect(h.badges.map((b) => b.uid)).toEqual(['04A1B2C3', '0BADC0DE', '04A1B2C3', '0BADC0DE']);
  });

  it('drops malformed payloads, counts them, logs topic and problem, and keeps working', async () => {
    const h = await startReader(broker.url);
    const sim = await connectReaderSim(broker.url);
    const bad: [string | Buffer, RegExp][] = [
      ['hello there', /not JSON and not a hex UID: "hello there"/],
      [JSON.stringify({ uid: 'xyz' }), /uid: not a hex UID: "xyz"/],
      [JSON.stringify({ card: '04A1B2C3' }), /uid: missing/],
      ['00112233445566778899AA', /11 bytes, a badge UID has 1 to 10/],
      ['', /empty payload/],
      [Buffer.from([0xff, 0xfe, 0x00, 0x81, 0x13, 0x37]), /not JSON and not a hex UID: 6 bytes of binary data \(ff fe 00 81 13 37\)/],
      ['{"uid": "04A1', /not valid JSON/],
    ];
    for (const [payload] of bad) await tap(sim, payload);
    await tap(sim, '04A1B2C3');
    await waitFor(() => h.badges.length === 1, 5000, 'the good tap');
    expect(h.badges).toEqual([{ uid: '04A1B2C3', reader: 'door-reader' }]);
    expect(h.detail().counters).toMatchObject({ taps: 1, malformed: bad.length });
    expect(h.detail().lastMalformed?.problem).toMatch(/not valid JSON/);
    const logged = warnings(h);
    // The first few of a burst are logged; the rest are counted (see the flood test below).
    expect(logged.length).toBe(5);
    logged.forEach((line, i) => {
      expect(line).toMatchObject({ device: 'door-reader', topic: TOPIC });
      expect(line.problem).toMatch(bad[i]![1]);
      expect(line.msg).toContain(`door-reader: dropped a message on ${TOPIC}`);
    });
    expect(h.reader.health().state).toBe('online');
  });

  it('counts a flood of malformed payloads without flooding the log', async () => {
    const h = await startReader(broker.url);
    const sim = await connectReaderSim(broker.url);
    await Promise.all(Array.from({ length: 300 }, (_, i) => tap(sim, `garbage ${i}`)));
    await tap(sim, '04A1B2C3');
    await waitFor(() => h.badges.length === 1, 10_000, 'the tap after the flood');
    expect(h.detail().counters.malformed).toBe(300);
    expect(warnings(h).length).toBeLessThanOrEqual(5);
  });

  it('passes a flood of 500 distinct badges on completely and in order', async () => {
    const h = await startReader(broker.url);
    const sim = await connectReaderSim(broker.url);
    const uids = Array.from({ length: 500 }, (_, i) => (0x04a10000 + i).toString(16).toUpperCase().padStart(8, '0'));
    await Promise.all(uids.map((uid, i) => tap(sim, i % 2 ? JSON.stringify({ uid: uid.toLowerCase() }) : uid)));
    await waitFor(() => h.badges.length >= 500, 20_000, '500 badges');
    expect(h.badges.map((b) => b.uid)).toEqual(uids);
    expect(h.detail().counters).toMatchObject({ taps: 500, repeats: 0, malformed: 0 });
  });

  it('ignores a retained tap replayed by the broker at subscription', async () => {
    const sim = await connectReaderSim(broker.url);
    await tap(sim, '0BADC0DE', true);
    const h = await startReader(broker.url);
    await waitFor(() => h.detail().counters.retained === 1, 5000, 'retained tap seen');
    await tap(sim, '04A1B2C3');
    await waitFor(() => h.badges.length === 1, 5000, 'the live tap');
    expect(h.badges).toEqual([{ uid: '04A1B2C3', reader: 'door-reader' }]);
    await sim.publishAsync(TOPIC, '', { qos: 1, retain: true }); // clears the retained message for later tests
  });

  it("follows the reader's status topic: its last will marks it offline, its birth online again", async () => {
    const will = { topic: STATUS, payload: Buffer.from('offline'), qos: 1 as const, retain: true };
    const sim = await connectReaderSim(broker.url, { will });
    await sim.publishAsync(STATUS, 'online', { qos: 1, retain: true });
    const h = await startReader(broker.url, { statusTopic: STATUS });
    await waitFor(() => h.detail().readerStatus === 'online', 5000, 'reader status online');
    expect(h.reader.health().state).toBe('online');

    sim.end(true); // the reader loses power: no DISCONNECT, so the broker publishes its will
    await waitFor(() => h.reader.health().state === 'offline', 5000, 'offline after the will');
    expect(h.detail()).toMatchObject({ readerStatus: 'offline', broker: { connected: true, subscribed: true } });
    const lost = h.journal.latest('device.lost', 'door-reader');
    expect(lost?.data.reason).toContain(STATUS);

    // A gateway started while the reader is gone sees the retained will at once.
    const late = await startReader(broker.url, { id: 'door-reader', statusTopic: STATUS });
    await waitFor(() => late.detail().readerStatus === 'offline', 5000, 'late reader sees offline');
    expect(late.reader.health().state).toBe('offline');

    const back = await connectReaderSim(broker.url, { will });
    await back.publishAsync(STATUS, 'online', { qos: 1, retain: true });
    await waitFor(() => h.reader.health().state === 'online', 5000, 'online after the birth');
    expect(h.kinds()).toEqual(['device.connected', 'device.lost', 'device.reconnected']);
    await tap(back, '04A1B2C3');
    await waitFor(() => h.badges.length === 1, 5000, 'tap after coming back');
    await back.publishAsync(STATUS, '', { qos: 1, retain: true });
  });

  it('logs in with a user name and password and never shows the password', async () => {
    const secured = await TestBroker.start(0, {
      authenticate: (_client, username, password, done) => done(null, username === 'gateway' ? password?.toString() === 's3cret-pw' : username === 'esp32'),
    });
    cleanups.push(() => secured.close());
    const h = await startReader(secured.url, { username: 'gateway', password: 's3cret-pw' });
    const sim = await connectReaderSim(secured.url, { username: 'esp32' });
    await tap(sim, '04A1B2C3');
    await waitFor(() => h.badges.length === 1, 5000, 'tap through the secured broker');
    const health = JSON.stringify(h.reader.health());
    expect(health).toContain('"username":"gateway"');
    expect(health).not.toContain('s3cret-pw');
    expect(JSON.stringify(h.logs)).not.toContain('s3cret-pw');
  });

  it('reconnects when the broker goes away and comes back, and taps flow again', async () => {
    let flaky = await TestBroker.start();
    const port = flaky.port;
    cleanups.push(() => flaky.close());
    const h = await startReader(flaky.url);
    const sim = await connectReaderSim(flaky.url);
    await tap(sim, '04A1B2C3');
    await waitFor(() => h.badges.length === 1, 5000, 'tap before the outage');

    await flaky.close();
    await waitFor(() => h.reader.health().state === 'offline', 5000, 'offline without the broker');
    expect(h.detail().broker).toEqual({ connected: false, subscribed: false });
    expect(h.kinds()).toEqual(['device.connected', 'device.lost']);
    // Failed attempts while the broker is down are not losses of their own, and not a log flood.
    await new Promise((r) => setTimeout(r, RECONNECT_MS * 2.5));
    expect(h.kinds()).toEqual(['device.connected', 'device.lost']);
    expect(h.logs.filter((l) => (l.level as number) >= 40 && String(l.msg).startsWith('broker connection error')).length).toBeLessThanOrEqual(1);

    flaky = await TestBroker.start(port);
    await waitFor(() => h.detail().broker.subscribed && sim.connected, 10_000, 'both sides back');
    expect(h.reader.health().state).toBe('online');
    expect(h.detail().counters.reconnects).toBe(1);
    expect(h.kinds()).toEqual(['device.connected', 'device.lost', 'device.reconnected']);
    await tap(sim, '0BADC0DE');
    await waitFor(() => h.badges.length === 2, 5000, 'tap after the outage');
    expect(h.badges.map((b) => b.uid)).toEqual(['04A1B2C3', '0BADC0DE']);
  });

  it('leaves no open handles after stop(), connected or still trying to connect', async () => {
    const kinds = ['TCPSocketWrap', 'TCPWrap', 'Timeout'];
    const handles = () => {
      const active = process.getActiveResourcesInfo();
      return Object.fromEntries(kinds.map((k) => [k, active.filter((r) => r === k).length]));
    };
    // Timers of earlier tests may still expire meanwhile, so: no more than before, of each kind.
    const noMoreThan = (before: Record<string, number>) => kinds.every((k) => handles()[k]! <= before[k]!);
    const before = handles();

    const connected = await startReader(broker.url);
    expect(noMoreThan(before)).toBe(false); // the check sees the reader's socket
    await connected.reader.stop();
    await waitFor(() => noMoreThan(before), 5000, 'handles released after stop (connected)');
    expect(broker.aedes.connectedClients).toBe(0);

    // A port where no broker listens: the reader keeps retrying until stopped.
    const spare = createServer();
    await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', () => resolve()));
    const deadPort = (spare.address() as AddressInfo).port;
    await new Promise<void>((resolve) => spare.close(() => resolve()));
    const trying = await startReader(`mqtt://127.0.0.1:${deadPort}`, {}, { subscribed: false });
    await waitFor(() => trying.logs.some((l) => String(l.msg).startsWith('broker connection error')), 5000, 'a failed attempt');
    await trying.reader.stop();
    await waitFor(() => noMoreThan(before), 5000, 'handles released after stop (not connected)');
    const attempts = () => trying.logs.filter((l) => String(l.msg).startsWith('broker connection error')).length;
    const attemptsAtStop = attempts();
    await new Promise((r) => setTimeout(r, RECONNECT_MS * 1.5));
    expect(attempts()).toBe(attemptsAtStop); // no reconnect attempt after stop
    expect(noMoreThan(before)).toBe(true);
    expect(trying.reader.health().state).toBe('offline');
  });
});
