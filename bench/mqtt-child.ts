/**
 * The other processes of `bench/mqtt.ts`, so that what is measured runs alone in its process:
 *
 * - `fleet`: simulated devices (mqtt.js clients) that connect and publish QoS 1 telemetry on
 *   command, in groups (one per broker under test);
 * - `broker`: the gateway's embedded broker with devices' credentials in a fresh journal, and
 *   nothing else, reporting its resident memory.
 *
 * Driven over the IPC channel of `fork`: each request `{ id, cmd, … }` is answered `{ id, … }`.
 */
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { EmbeddedBroker } from '../gateway/src/mqtt/broker.js';
import { brokerSchema } from '../gateway/src/mqtt/config.js';
import { MqttCredentials } from '../gateway/src/mqtt/credentials.js';

export interface DeviceLogin {
  id: string;
  username?: string;
  password?: string;
}

type Request =
  | { id: number; cmd: 'connect'; group: string; url: string; base: string; devices: DeviceLogin[] }
  | { id: number; cmd: 'publish'; group: string; base: string; perDevice: number; window: number }
  | { id: number; cmd: 'start-broker'; dir: string; devices: number; base: string }
  | { id: number; cmd: 'memory' }
  | { id: number; cmd: 'exit' };

const send = (msg: object) => process.send!(msg);

// ---- fleet ----

const groups = new Map<string, { clients: MqttClient[]; seq: number }>();

async function connectGroup(r: Extract<Request, { cmd: 'connect' }>): Promise<void> {
  const clients: MqttClient[] = [];
  // a few at a time, as devices coming up on a lab network would
  for (let i = 0; i < r.devices.length; i += 20) {
    clients.push(
      ...(await Promise.all(
        r.devices.slice(i, i + 20).map((d) =>
          connectAsync(
            r.url,
            {
              clientId: d.id,
              username: d.username,
              password: d.password,
              reconnectPeriod: 0,
              keepalive: 60,
              will: { topic: `${r.base}/devices/${d.id}/status`, payload: Buffer.from('{"state":"offline","session":1}'), qos: 1, retain: true },
            },
            false,
          ),
        ),
      )),
    );
  }
  await Promise.all(clients.map((c, i) => c.publishAsync(`${r.base}/devices/${r.devices[i]!.id}/status`, '{"state":"online","session":1}', { qos: 1, retain: true })));
  groups.set(r.group, { clients, seq: 0 });
}

/** Every device publishes `perDevice` telemetry messages, keeping `window` unacknowledged at most. */
async function publishGroup(r: Extract<Request, { cmd: 'publish' }>): Promise<{ cpuMs: number; wallMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const g = groups.get(r.group)!;
  const start = g.seq;
  g.seq += r.perDevice;
  await Promise.all(
    g.clients.map(async (c) => {
      const topic = `${r.base}/devices/${c.options.clientId}/telemetry`;
      let next = start;
      const end = start + r.perDevice;
      const worker = async () => {
        while (next < end) {
          const seq = next++;
          // counters a device can reach at up to a thousand messages a second: the drivers check them against physics
          const payload = `{"seq":${seq},"bootId":3141592,"uptimeS":${(seq / 1000).toFixed(3)},"counters":{"runtimeS":${(seq / 1000).toFixed(3)},"samples":${seq * 50},"energyWh":${(seq * 0.0001).toFixed(4)}},"busy":${seq % 7 !== 0},"powerW":${(120 + (seq % 13)).toFixed(1)}}`;
          await c.publishAsync(topic, payload, { qos: 1 });
        }
      };
      await Promise.all(Array.from({ length: r.window }, worker));
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - t0 };
}

// ---- broker ----

let broker: EmbeddedBroker | null = null;
let journal: Journal | null = null;

async function startBroker(r: Extract<Request, { cmd: 'start-broker' }>): Promise<{ url: string; devices: DeviceLogin[] }> {
  journal = Journal.open(join(r.dir, 'data'));
  const creds = new MqttCredentials(journal);
  const devices: DeviceLogin[] = [];
  for (let i = 0; i < r.devices; i++) {
    const id = `dev-${String(i).padStart(3, '0')}`;
    devices.push({ id, username: id, password: (await creds.add(id)).secret });
  }
  const cfg = brokerSchema.parse({ listen: '127.0.0.1:0', baseTopic: r.base, connectionsPerMinute: 100_000 });
  broker = new EmbeddedBroker(cfg, journal, createLogger({ level: 'error', format: 'json' }));
  broker.on('telemetry', () => {});
  await broker.start();
  return { url: broker.addresses.tcp!, devices };
}

/** Resident memory after a full collection (the process runs with --expose-gc). */
async function memory() {
  for (let i = 0; i < 3; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 100));
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, connected: broker?.health().clients.devices ?? 0 };
}

process.on('message', (r: Request) => {
  const answer = (p: Promise<object | void>) =>
    p.then(
      (v) => send({ id: r.id, ...(v ?? {}) }),
      (err: Error) => send({ id: r.id, error: err.message }),
    );
  switch (r.cmd) {
    case 'connect':
      return answer(connectGroup(r));
    case 'publish':
      return answer(publishGroup(r));
    case 'start-broker':
      return answer(startBroker(r));
    case 'memory':
      return answer(memory());
    case 'exit':
      return answer(
        (async () => {
          for (const g of groups.values()) await Promise.all(g.clients.map((c) => c.endAsync(true)));
          await broker?.stop();
          journal?.close();
          setImmediate(() => process.exit(0));
        })(),
      );
  }
});
send({ ready: true });
