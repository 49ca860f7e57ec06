/**
 * The embedded MQTT broker.
 *
 * Ingest: 50 simulated devices (mqtt.js clients in a child process) publish QoS 1 telemetry
 * into the gateway's broker, which authenticates them, checks each message against the topic
 * rules and the telemetry schema and hands it to the gateway through its typed API; counted
 * at the `telemetry` listener; and consumed by the networked-instrument drivers, one a device
 * (validated, metered from the cumulative counters, the counter state saved in the journal
 * database with every message), counted by the drivers. Next to it, in the same run and alternating, the same broker
 * relays the same messages to a plain MQTT subscriber in the gateway's process (the floor),
 * and a bare aedes broker (no authentication, no rules, no validation) does the same (what
 * the security costs).
 *
 * Memory: the broker alone in a fresh process (run with --expose-gc), resident memory before
 * and with 200 connected idle devices (each with a will, a birth and a command subscription).
 * That process runs the sources transpiled to JavaScript, as a production install runs dist/:
 * tsx's loader would add some 35 MB of its own.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import ts from 'typescript';
import { Aedes } from 'aedes';
import { connectAsync, type MqttClient } from 'mqtt';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { EmbeddedBroker } from '../gateway/src/mqtt/broker.js';
import { brokerSchema } from '../gateway/src/mqtt/config.js';
import { MqttCredentials } from '../gateway/src/mqtt/credentials.js';
import { mqttInstrumentSchema } from '../gateway/src/devices/mqtt-instrument/config.js';
import { MqttInstrument } from '../gateway/src/devices/mqtt-instrument/driver.js';
import type { DeviceLogin } from './mqtt-child.js';
import { median, round, type BenchResult, type BenchSize } from './stats.js';

const BASE = 'ovn/bench';
/**
 * Ingest: `devices` publishing `perDevice` messages each, `window` unacknowledged at most (a
 * small outbox, as device MQTT stacks keep), `rounds` times after a warm-up. Memory:
 * `idleDevices` connected, measured `settleMs` after they are.
 */
const SIZES = {
  full: { devices: 50, perDevice: 600, window: 8, rounds: 3, idleDevices: 200, settleMs: 2000 },
  tiny: { devices: 2, perDevice: 10, window: 2, rounds: 1, idleDevices: 2, settleMs: 100 },
} satisfies Record<BenchSize, object>;
type Size = (typeof SIZES)[BenchSize];
const MEMORY_TARGET_MB = 150;

const ROOT = join(import.meta.dirname, '..');

/** A child process of mqtt-child.ts with a request/answer API. */
class Child {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();

  private constructor(private readonly proc: ChildProcess) {
    proc.on('message', (m: Record<string, unknown>) => {
      const w = this.waiting.get(m.id as number);
      if (!w) return;
      this.waiting.delete(m.id as number);
      if (m.error) w.reject(new Error(String(m.error)));
      else w.resolve(m);
    });
    proc.on('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`the benchmark's child process exited (${code})`));
      this.waiting.clear();
    });
  }

  /** The child from the TypeScript sources through tsx, or from `compiled` JavaScript with plain node. */
  static async start(opts: { compiled?: string; nodeArgs?: string[] } = {}): Promise<Child> {
    const [file, loader] = opts.compiled ? [join(opts.compiled, 'bench', 'mqtt-child.js'), []] : [join(ROOT, 'bench', 'mqtt-child.ts'), ['--import', 'tsx']];
    const proc = fork(file, [], { cwd: ROOT, execArgv: [...loader, ...(opts.nodeArgs ?? [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      proc.once('message', () => resolve());
      proc.once('exit', (code) => reject(new Error(`the benchmark's child process exited (${code}) before it was ready`)));
    });
    return new Child(proc);
  }

  ask<T = Record<string, unknown>>(request: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: Record<string, unknown>) => void, reject });
      this.proc.send({ ...request, id });
    });
  }

  async exit(): Promise<void> {
    await this.ask({ cmd: 'exit' }).catch(() => {});
    if (this.proc.exitCode === null) await new Promise((r) => this.proc.once('exit', r));
  }
}


interface Rate {
  perSec: number;
  /** CPU time of the gateway's process per message, µs (robust to a machine shared with other work). */
  cpuUs: number;
}

/** Messages per second from asking the fleet to publish until `received()` reaches the total, and the CPU it took here. */
async function measure({ devices, perDevice, window }: Size, fleet: Child, group: string, received: () => number): Promise<Rate> {
  const total = devices * perDevice;
  const before = received();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fleet.ask({ cmd: 'publish', group, base: BASE, perDevice, window });
  while (received() - before < total) await new Promise((r) => setTimeout(r, 1));
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { perSec: total / s, cpuUs: (cpu.user + cpu.system) / total };
}

/** A plain subscriber to every device's telemetry, counting what it receives. */
async function plainSubscriber(url: string, opts: { clientId: string; username?: string; password?: string }): Promise<{ client: MqttClient; count: () => number }> {
  const client = await connectAsync(url, { ...opts, reconnectPeriod: 0 }, false);
  let n = 0;
  client.on('message', () => n++);
  await client.subscribeAsync(`${BASE}/devices/+/telemetry`, { qos: 1 });
  return { client, count: () => n };
}

async function benchIngest(size: Size): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-mqtt-'));
  const journal = Journal.open(dir);
  const creds = new MqttCredentials(journal);
  const logins: DeviceLogin[] = [];
  for (let i = 0; i < size.devices; i++) {
    const id = `dev-${String(i).padStart(3, '0')}`;
    logins.push({ id, username: id, password: (await creds.add(id)).secret });
  }
  const log = createLogger({ level: 'error', format: 'json' });
  const broker = new EmbeddedBroker(brokerSchema.parse({ listen: '127.0.0.1:0', baseTopic: BASE, connectionsPerMinute: 100_000 }), journal, log);
  const drivers = logins.map((d) => new MqttInstrument(mqttInstrumentSchema.parse({ id: d.id, kind: 'mqtt-instrument' }), broker, journal, log));
  const metered = () => drivers.reduce((a, d) => a + d.stats.telemetry, 0);
  let ingested = 0;
  broker.on('telemetry', (_id, t) => {
    if (t.counters.energyWh >= 0) ingested++;
  });
  await broker.start();

  const bare = await Aedes.createBroker();
  const bareServer = createServer(bare.handle);
  await new Promise<void>((r) => bareServer.listen(0, '127.0.0.1', () => r()));
  const bareUrl = `mqtt://127.0.0.1:${(bareServer.address() as AddressInfo).port}`;

  const fleet = await Child.start();
  await fleet.ask({ cmd: 'connect', group: 'gateway', url: broker.addresses.tcp!, base: BASE, devices: logins });
  await fleet.ask({ cmd: 'connect', group: 'bare', url: bareUrl, base: BASE, devices: logins.map((d) => ({ id: d.id })) });

  // a warm-up round of each, then rounds alternating so that drift in the machine's load hits all three
  const rates = { ingest: [] as Rate[], drivers: [] as Rate[], relay: [] as Rate[], bare: [] as Rate[] };
  for (let r = 0; r <= size.rounds; r++) {
    const ingest = await measure(size, fleet, 'gateway', () => ingested);
    for (const d of drivers) d.start();
    const driven = await measure(size, fleet, 'gateway', metered);
    for (const d of drivers) await d.stop();
    const sub = await plainSubscriber(broker.addresses.tcp!, broker.internalClientOptions('bench'));
    const relay = await measure(size, fleet, 'gateway', sub.count);
    await sub.client.endAsync();
    const bareSub = await plainSubscriber(bareUrl, { clientId: 'bench-subscriber' });
    const bareRelay = await measure(size, fleet, 'bare', bareSub.count);
    await bareSub.client.endAsync();
    if (r === 0) continue;
    rates.ingest.push(ingest);
    rates.drivers.push(driven);
    rates.relay.push(relay);
    rates.bare.push(bareRelay);
  }
  const rejected = Object.values(broker.health().rejected).reduce((a, b) => a + b, 0);
  const implausible = drivers.reduce((a, d) => a + d.stats.implausibleReadings, 0);
  const reboots = drivers.reduce((a, d) => a + d.stats.reboots, 0);
  await fleet.exit();
  await broker.stop();
  await new Promise<void>((r) => bare.close(() => r()));
  await new Promise<void>((r) => bareServer.close(() => r()));
  journal.close();
  rmSync(dir, { recursive: true, force: true });
  if (rejected > 0) throw new Error(`mqtt bench: the broker rejected ${rejected} messages`);
  if (implausible > 0 || reboots > 0) throw new Error(`mqtt bench: the drivers saw ${implausible} implausible messages and ${reboots} reboots`);

  const [ingest, driven, relay, bareRelay] = [rates.ingest, rates.drivers, rates.relay, rates.bare].map((r) => ({ perSec: median(r.map((x) => x.perSec)), cpuUs: median(r.map((x) => x.cpuUs)) })) as [Rate, Rate, Rate, Rate];
  const shape = `${size.devices} devices × ${size.perDevice} QoS 1 telemetry messages, ${size.window} in flight each, publishers in a child process; median of ${size.rounds}, alternating`;
  return [
    {
      bench: 'mqtt-ingest',
      path: `${shape}: embedded broker (auth, topic rules, schema validation) → typed telemetry event in the gateway`,
      messagesPerSec: Math.round(ingest.perSec),
      cpuUsPerMessage: round(ingest.cpuUs),
      ofRawFloor: round(ingest.perSec / relay.perSec, 2),
      target: '≥ 50 % of the floor',
      pass: ingest.perSec >= 0.5 * relay.perSec,
    },
    {
      bench: 'mqtt-ingest-drivers',
      path: `${shape}: embedded broker → the networked-instrument driver of each device (metered from cumulative counters, counter state saved in SQLite at most once a second per device, as in the gateway)`,
      messagesPerSec: Math.round(driven.perSec),
      cpuUsPerMessage: round(driven.cpuUs),
      ofRawFloor: round(driven.perSec / relay.perSec, 2),
      target: '≥ 50 % of the floor',
      pass: driven.perSec >= 0.5 * relay.perSec,
    },
    {
      bench: 'mqtt-relay-floor',
      path: `${shape}: the same embedded broker relaying them to a plain mqtt.js subscriber in the gateway process`,
      messagesPerSec: Math.round(relay.perSec),
      cpuUsPerMessage: round(relay.cpuUs),
    },
    {
      bench: 'mqtt-relay-bare-aedes',
      path: `${shape}: aedes with no authentication, rules or validation relaying them to the same plain subscriber`,
      messagesPerSec: Math.round(bareRelay.perSec),
      cpuUsPerMessage: round(bareRelay.cpuUs),
      ofRawFloor: round(relay.perSec / bareRelay.perSec, 2),
    },
  ];
}

/**
 * The sources the broker's process needs, as JavaScript (TypeScript's transpiler, no type
 * check), under node_modules/.cache so that packages resolve as from the sources.
 */
function transpile(): string {
  const out = join(ROOT, 'node_modules', '.cache', 'ovn-bench-mqtt');
  const files = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
  for (const file of [...files('gateway/src'), ...files('firmware-protocol/src'), ...files('simulators/src'), 'bench/mqtt-child.ts']) {
    const js = ts.transpileModule(readFileSync(join(ROOT, file), 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true } });
    const target = join(out, file.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, js.outputText);
  }
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  writeFileSync(join(out, 'package.json'), JSON.stringify({ private: true, type: 'module', version }));
  return out;
}

async function benchMemory({ idleDevices, settleMs }: Size): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-mqtt-mem-'));
  const host = await Child.start({ compiled: transpile(), nodeArgs: ['--expose-gc'] });
  const fleet = await Child.start();
  const { url, devices } = await host.ask<{ url: string; devices: DeviceLogin[] }>({ cmd: 'start-broker', dir, devices: idleDevices, base: BASE });
  const before = await host.ask<{ rss: number; heapUsed: number }>({ cmd: 'memory' });
  await fleet.ask({ cmd: 'connect', group: 'idle', url, base: BASE, devices });
  await new Promise((r) => setTimeout(r, settleMs));
  const after = await host.ask<{ rss: number; heapUsed: number; connected: number }>({ cmd: 'memory' });
  await fleet.exit();
  await host.exit();
  rmSync(dir, { recursive: true, force: true });
  if (after.connected !== idleDevices) throw new Error(`mqtt bench: ${after.connected} of ${idleDevices} devices connected`);
  const mb = (b: number) => round(b / 1024 / 1024, 1);
  return [
    {
      bench: 'mqtt-memory-200-devices',
      path: `resident memory of a process running only the embedded broker (and its journal), with ${idleDevices} connected idle devices (will, birth, command subscription), after a full GC; plain node, sources transpiled`,
      rssMb: mb(after.rss),
      rssDeltaMb: mb(after.rss - before.rss),
      heapDeltaKbPerDevice: round((after.heapUsed - before.heapUsed) / 1024 / idleDevices, 1),
      target: `< ${MEMORY_TARGET_MB} MB`,
      pass: after.rss < MEMORY_TARGET_MB * 1024 * 1024,
    },
  ];
}

export async function benchMqtt(size: BenchSize = 'full'): Promise<BenchResult[]> {
  return [...(await benchIngest(SIZES[size])), ...(await benchMemory(SIZES[size]))];
}
