/**
 * The composition root: builds every part from the config, starts them in order and stops
 * them in reverse. Nothing else constructs adapters.
 */
import { resolve } from 'node:path';
import { AccessStore } from './access/store.js';
import { splitHostPort } from './config/common.js';
import type { LoadedConfig } from './config/load.js';
import type { DeviceConfig, SimulatorConfig, ToolConfig } from './config/schema.js';
import type { Device } from './devices/device.js';
import { MeteringNode } from './devices/metering-node/driver.js';
import { Printer } from './devices/printer/driver.js';
import { GpioSwitch } from './devices/gpio/switch.js';
import { RfidReader } from './devices/rfid/reader.js';
import { MqttBadgeReader } from './devices/mqtt-reader/reader.js';
import { MqttInstrument } from './devices/mqtt-instrument/driver.js';
import { buildApp } from './http/app.js';
import { renewDemoTokens } from './http/tokens.js';
import { ToolSessions, type ToolParts } from './sessions/tool-sessions.js';
import { isBadgeReader, type ToolMeter, type ToolSwitch } from './devices/tool-io.js';
import { ClockStatus } from './clock.js';
import { Billing, printerMaterials } from './billing/billing.js';
import { Outbox, OutboxDrain } from './ledger/outbox.js';
import { createTransport } from './ledger/transport.js';
import { mappingContext } from './ledger/config.js';
import { Journal } from './journal/journal.js';
import { StorageMonitor } from './journal/storage.js';
import type { EmbeddedBroker } from './mqtt/broker.js';
import type { UpstreamBridge } from './mqtt/bridge.js';
import { createLogger, type Logger } from './log.js';
import { VERSION } from './version.js';
import { loadScenario, playScenario, type SimControl } from '../../simulators/src/control.js';
import { nodeControl } from '../../simulators/src/metering-node/control.js';
import { MeteringNodeSim } from '../../simulators/src/metering-node/node-sim.js';
import { printerControl } from '../../simulators/src/printer/control.js';
import { PrinterSim } from '../../simulators/src/printer/printer-sim.js';
import { serveTcp, type SimTransport, type SimulatedDevice } from '../../simulators/src/transports.js';
import { LedgerSim } from '../../simulators/src/ledger/ledger-sim.js';
import { RigSim } from '../../simulators/src/rig/rig-sim.js';
import { rigControl } from '../../simulators/src/rig/control.js';

export interface StartOptions {
  /** Overrides gateway.http.port (0 picks a free port). */
  httpPort?: number;
  logger?: Logger;
}

export interface RunningSimulator {
  sim: SimulatedDevice | LedgerSim | RigSim;
  close(): Promise<void>;
}

export interface RunningGateway {
  readonly url: string;
  readonly journal: Journal;
  readonly devices: ReadonlyMap<string, Device>;
  readonly simulators: readonly RunningSimulator[];
  /** The embedded MQTT broker, when the config has an mqtt section. */
  readonly broker: EmbeddedBroker | null;
  /** The bridge to the upstream MQTT broker, when the config has a bridge section. */
  readonly bridge: UpstreamBridge | null;
  readonly log: Logger;
  /** The HTTP app (tests call `app.inject`). */
  readonly app: ReturnType<typeof buildApp>;
  /** Whether the journal's storage can record (disk full, read-only): for health. */
  readonly storage: StorageMonitor;
  stop(): Promise<void>;
}

export async function startGateway(loaded: LoadedConfig, opts: StartOptions = {}): Promise<RunningGateway> {
  const { config, baseDir } = loaded;
  const log = opts.logger ?? createLogger(config.gateway.log);
  const startedAt = new Date();
  const dataDir = resolve(baseDir, config.gateway.dataDir);
  const journal = openJournal(dataDir, log);
  journal.record('gateway.started', null, { version: VERSION, config: loaded.file, pid: process.pid });
  log.info({ version: VERSION, dataDir, schema: journal.schemaVersion }, `journal open at ${journal.file}`);
  const access = new AccessStore(journal);
  const clock = new ClockStatus({
    onJump: (jump) => {
      journal.record('clock.jumped', null, { ...jump });
      log.warn(jump, `the wall clock jumped by ${(jump.byMs / 1000).toFixed(1)} s (${jump.synced ? 'synchronised' : 'not synchronised'}); session durations are measured on the monotonic clock`);
    },
  });
  journal.clock = clock;
  clock.start();
  const storage = new StorageMonitor(journal, dataDir, { floorBytes: config.gateway.minFreeMb * 1e6, checkMs: 10_000 }, log.child({ part: 'storage' }));
  await storage.start();
  // Seed data: affiliates not known yet are added; after that the CLI and the API manage them.
  for (const a of config.affiliates) if (!access.get(a.id)) access.put(a);

  const scenarios = new AbortController();
  const simulators: RunningSimulator[] = [];
  let app: ReturnType<typeof buildApp> | null = null;
  const devices = new Map<string, Device>();
  const tools = new Map<string, ToolSessions>();
  let broker: EmbeddedBroker | null = null;
  let ledger: OutboxDrain | null = null;
  let bridge: UpstreamBridge | null = null;

  const stop = async () => {
    scenarios.abort();
    await app?.close();
    for (const t of tools.values()) await t.stop();
    await bridge?.stop();
    await ledger?.stop();
    clock.stop();
    for (const d of [...devices.values()].reverse()) await d.stop();
    await broker?.stop();
    for (const s of simulators) await s.close();
    journal.record('gateway.stopped', null, {});
    // the storage monitor still listens here, so a held write set aside at this moment is logged
    if (!journal.flushHeld()) {
      log.error({ heldWrites: journal.heldWrites }, `${journal.heldWrites} journal writes are lost: the storage still refuses them (sessions they closed are closed as interrupted at the next start, with their last checkpoint)`);
    }
    storage.stop();
    journal.close();
    log.info('gateway stopped');
  };

  try {
    for (const sc of config.simulators) if (sc.kind !== 'rig') simulators.push(await startSimulator(sc, baseDir, log, scenarios.signal));
    // before the devices: networked instruments will reach the gateway through it
    if (config.mqtt) {
      // loaded only when configured: the broker and its dependencies take a while to load on a Pi
      const { EmbeddedBroker } = await import('./mqtt/broker.js');
      broker = new EmbeddedBroker(config.mqtt, journal, log, { baseDir });
      await broker.start();
      const { publishSessionEvents } = await import('./mqtt/session-events.js');
      publishSessionEvents(journal, broker, log);
      // simulated instruments connect to it as devices, with credentials for this run only
      for (const sc of config.simulators) if (sc.kind === 'rig') simulators.push(startRigSimulator(sc, broker, baseDir, log, scenarios.signal));
    }
    if (config.ledger) {
      // Attached before any session can close, so every record is written with its event.
      const outbox = new Outbox(journal, mappingContext(config.ledger, config.billing));
      const drain = new OutboxDrain(outbox, createTransport(config.ledger, journal), config.ledger, log.child({ part: 'ledger' }));
      outbox.attach(() => drain.kick());
      drain.start();
      ledger = drain;
      log.info({ url: config.ledger.url, transport: config.ledger.transport }, `delivering to the ledger at ${config.ledger.url}`);
    }
    for (const dc of config.devices) devices.set(dc.id, createDevice(dc, journal, log, broker, config.gateway.checkpointS * 1000));
    for (const d of devices.values()) d.start();
    if (config.bridge) {
      // loaded only when configured, like the broker
      const { UpstreamBridge } = await import('./mqtt/bridge.js');
      const summary = () => {
        const states = [...devices.values()].map((d) => d.health().state);
        return { gateway: config.gateway.name, uptimeS: Math.round((Date.now() - startedAt.getTime()) / 1000), devicesOnline: states.filter((s) => s === 'online').length, devicesOffline: states.filter((s) => s !== 'online').length };
      };
      bridge = new UpstreamBridge(config.bridge, journal, log.child({ part: 'bridge' }), { health: summary, devices: () => [...devices.values()].map((d) => ({ id: d.id, state: d.health().state })) });
      bridge.start();
    }
    const billing = config.billing ? new Billing(config.billing, journal, printerMaterials(config), config.useTypes) : null;
    const policy = { checkpointMs: config.gateway.checkpointS * 1000, useTypes: config.useTypes, clock, billing, technicians: config.billing?.technicians ?? [], storage };
    for (const tc of config.tools) tools.set(tc.id, new ToolSessions(tc, toolParts(tc, devices), access, journal, policy, log));
    for (const t of tools.values()) t.start();

    const http = config.gateway.http;
    app = buildApp({ name: config.gateway.name, startedAt, devices, tools, journal, billing, ledger, bridge, broker, storage, access, metricsPublic: http.metricsPublic }, log);
    const port = opts.httpPort ?? config.gateway.http.port;
    const url = await app.listen({ host: config.gateway.http.host, port });
    log.info({ url }, `HTTP API on ${url}/api/health`);
    if (http.demoTokens) {
      for (const { role, token } of renewDemoTokens(journal, 'ada')) log.info({ role }, `demo ${role} login: ${url}/#token=${token}`);
    }
    return { url, journal, devices, simulators, broker, bridge, log, storage, app, stop };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

/** Opens the journal, migrating it when this version brings a new schema; a failure is logged before it stops the start. */
function openJournal(dataDir: string, log: Logger): Journal {
  let journal: Journal;
  try {
    journal = Journal.open(dataDir);
  } catch (err) {
    log.fatal((err as Error).message);
    throw err;
  }
  const m = journal.migrated;
  if (m) log.warn(m, `journal migrated from schema version ${m.from} to ${m.to}; the journal from before is kept at ${m.backup}`);
  return journal;
}

/** The devices of a tool; the config schema has checked that the ids name devices of the right kinds. */
function toolParts(tc: ToolConfig, devices: ReadonlyMap<string, Device>): ToolParts {
  const node = tc.node ? (devices.get(tc.node) as MeteringNode) : null;
  const readers = [...(node ? [node] : []), ...tc.readers.map((id) => devices.get(id)!)].filter(isBadgeReader);
  const meter = tc.meter ? (devices.get(tc.meter) as ToolMeter) : node;
  return { switch: devices.get(tc.switch ?? tc.node!) as ToolSwitch, readers, meter, printer: tc.printer ? (devices.get(tc.printer) as Printer) : null };
}

/** The config schema has checked that a broker is configured for the devices that need it. */
function createDevice(dc: DeviceConfig, journal: Journal, log: Logger, broker: EmbeddedBroker | null, checkpointMs: number): Device {
  switch (dc.kind) {
    case 'metering-node':
      return new MeteringNode(dc, journal, log);
    case 'printer':
      return new Printer(dc, journal, log, { checkpointMs });
    case 'gpio':
      return new GpioSwitch(dc, journal, log);
    case 'rfid-reader':
      return new RfidReader(dc, journal, log);
    case 'mqtt-badge-reader':
      // without a url it reads from the embedded broker, as one of the gateway's own clients
      return new MqttBadgeReader(dc, journal, log, dc.url === undefined ? { connection: broker!.internalClientOptions(`reader-${dc.id}`) } : {});
    case 'mqtt-instrument':
      return new MqttInstrument(dc, broker!, journal, log);
  }
}

function startRigSimulator(sc: Extract<SimulatorConfig, { kind: 'rig' }>, broker: EmbeddedBroker, baseDir: string, log: Logger, signal: AbortSignal): RunningSimulator {
  const { url, password } = broker.simulatedDeviceCredentials(sc.device);
  const rig = new RigSim({ url, password, deviceId: sc.device, baseTopic: broker.topics.base, model: sc.model, powerW: sc.powerW, idleW: sc.idleW, telemetryIntervalMs: sc.telemetryIntervalMs, timeScale: sc.timeScale });
  rig.start();
  const slog = log.child({ simulator: sc.device });
  slog.info(`simulated ${sc.model} ${sc.device} connecting to the embedded broker at ${url}`);
  const steps = sc.scenario ? loadScenario(resolve(baseDir, sc.scenario)) : [];
  playScenario(rigControl(rig), steps, (out) => slog.info(out), signal).catch((err: Error) => slog.error(err.message));
  return { sim: rig, close: () => rig.stop() };
}

async function startSimulator(sc: Exclude<SimulatorConfig, { kind: 'rig' }>, baseDir: string, log: Logger, signal: AbortSignal): Promise<RunningSimulator> {
  const { host, port } = splitHostPort(sc.listen);
  if (sc.kind === 'ledger') {
    const ledger = await LedgerSim.start({ host, port, db: sc.db ? resolve(baseDir, sc.db) : undefined });
    log.child({ simulator: sc.listen }).info(`simulated ledger on ${ledger.url} (records: ${ledger.url}/records)`);
    return { sim: ledger, close: () => ledger.close() };
  }
  const steps = sc.scenario ? loadScenario(resolve(baseDir, sc.scenario)) : [];
  let sim: SimulatedDevice;
  let control: (t: SimTransport) => SimControl;
  let name: string;
  switch (sc.kind) {
    case 'node': {
      const node = new MeteringNodeSim({ nodeId: sc.nodeId, powerW: sc.powerW, timeScale: sc.timeScale });
      [sim, control, name] = [node, (t) => nodeControl(node, t), `metering node ${sc.nodeId}`];
      break;
    }
    case 'printer': {
      const printer = new PrinterSim({ dialect: sc.dialect, timeScale: sc.timeScale });
      [sim, control, name] = [printer, (t) => printerControl(printer, t), `${sc.dialect} printer`];
      break;
    }
  }
  const transport = await serveTcp(sim, host, port);
  const slog = log.child({ simulator: sc.listen });
  slog.info(`simulated ${name} listening on ${transport.address}`);
  playScenario(control(transport), steps, (out) => slog.info(out), signal).catch((err: Error) => slog.error(err.message));
  return { sim, close: () => transport.close() };
}
