/**
 * The composition root: builds every part from the config, starts them in order and stops
 * them in reverse. Nothing else constructs adapters.
 */
import { join, resolve } from 'node:path';
import { AccessStore } from './access/store.js';
import type { LoadedConfig } from './config/load.js';
import { useTypeIds, type DeviceConfig, type ToolConfig } from './config/schema.js';
import type { Device } from './devices/device.js';
import { MeteringNode } from './devices/metering-node/driver.js';
import { Printer } from './devices/printer/driver.js';
import { MoonrakerPrinter } from './devices/moonraker/driver.js';
import { PrusalinkPrinter } from './devices/prusalink/driver.js';
import { GpioSwitch } from './devices/gpio/switch.js';
import { RfidReader } from './devices/rfid/reader.js';
import { MqttBadgeReader } from './devices/mqtt-reader/reader.js';
import { MqttInstrument } from './devices/mqtt-instrument/driver.js';
import { PrintQueue } from './print-jobs/queue.js';
import { buildApp } from './http/app.js';
import { renewDemoTokens } from './http/tokens.js';
import { ToolSessions, type ToolParts } from './sessions/tool-sessions.js';
import { isBadgeReader, type ToolMeter, type ToolPrinter, type ToolSwitch } from './devices/tool-io.js';
import { ClockStatus } from './clock.js';
import { Billing, printerMaterials } from './billing/billing.js';
import { Outbox, OutboxDrain } from './ledger/outbox.js';
import { Notifier, type NotificationRow, type NotifierProbes } from './notify/outbox.js';
import { Maintenance } from './http/maintenance.js';
import { statement } from './billing/statement.js';
import { statementCsv } from './billing/render.js';
import { createTransport } from './ledger/transport.js';
import { mappingContext } from './ledger/config.js';
import { Journal } from './journal/journal.js';
import { StorageMonitor } from './journal/storage.js';
import type { EmbeddedBroker } from './mqtt/broker.js';
import type { UpstreamBridge } from './mqtt/bridge.js';
import type { HomeAssistantDiscovery } from './mqtt/homeassistant.js';
import { createLogger, type Logger } from './log.js';
import { VERSION } from './version.js';

/** A month-closed mail carries the month's invoices up to this many; past it, the statement alone (`billing invoices --out` writes them all). */
const MAX_INVOICES_ATTACHED = 30;

export interface StartOptions {
  /** Overrides gateway.http.port (0 picks a free port). */
  httpPort?: number;
  logger?: Logger;
}

export interface RunningGateway {
  readonly url: string;
  readonly journal: Journal;
  readonly devices: ReadonlyMap<string, Device>;
  /** The embedded MQTT broker, when the config has an mqtt section. */
  readonly broker: EmbeddedBroker | null;
  /** The bridge to the upstream MQTT broker, when the config has a bridge section. */
  readonly bridge: UpstreamBridge | null;
  /** Home Assistant discovery, when the config has a homeassistant section. */
  readonly homeassistant: HomeAssistantDiscovery | null;
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

  let app: ReturnType<typeof buildApp> | null = null;
  const devices = new Map<string, Device>();
  const tools = new Map<string, ToolSessions>();
  let broker: EmbeddedBroker | null = null;
  let ledger: OutboxDrain | null = null;
  let notifier: Notifier | null = null;
  let bridge: UpstreamBridge | null = null;
  let printQueue: PrintQueue | null = null;
  let homeassistant: HomeAssistantDiscovery | null = null;

  const stop = async () => {
    await app?.close();
    printQueue?.stop();
    await homeassistant?.stop();
    for (const t of tools.values()) await t.stop();
    await bridge?.stop();
    await ledger?.stop();
    await notifier?.stop();
    clock.stop();
    for (const d of [...devices.values()].reverse()) await d.stop();
    await broker?.stop();
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
    // before the devices: networked instruments will reach the gateway through it
    if (config.mqtt) {
      // loaded only when configured: the broker and its dependencies take a while to load on a Pi
      const { EmbeddedBroker } = await import('./mqtt/broker.js');
      broker = new EmbeddedBroker(config.mqtt, journal, log, { baseDir });
      await broker.start();
      const { publishSessionEvents } = await import('./mqtt/session-events.js');
      publishSessionEvents(journal, broker, log);
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
    const billing = config.billing ? new Billing(config.billing, journal, printerMaterials(config), useTypeIds(config.useTypes), { baseDir, gatewayName: config.gateway.name }) : null;
    if (config.notifications) {
      // Attached before any device or session records, like the ledger outbox.
      const printerTools = new Map(config.tools.flatMap((t) => (t.printer ? [[t.printer, t.id] as const] : [])));
      const rules = { billedTools: new Set(Object.keys(config.billing?.tools ?? {})), minorUnit: config.billing?.minorUnit ?? 2, refusedBadges: config.notifications.refusedBadges, printerTools };
      const maintenance = new Maintenance(journal);
      const billingCfg = config.billing;
      const probes: NotifierProbes = {
        // the tools are made after the notifier: until then, none
        maintenance: () => [...tools.values()].flatMap((t) => (t.cfg.serviceEveryH ? [{ toolId: t.cfg.id, runHours: maintenance.runHours(t), serviceEveryH: t.cfg.serviceEveryH }] : [])),
        clockSynced: () => clock.synced,
        ...(config.ledger ? { ledger: () => ledger?.health() ?? { alarm: null, deadLetters: 0 } } : {}),
        ...(billingCfg ? { monthToClose: (now: Date) => monthToClose(journal, now) } : {}),
      };
      // the month-closed mail carries its statement, and its invoices while they are few enough for a mail
      const attachments = async (row: NotificationRow) => {
        if (row.kind !== 'month-closed' || !billingCfg || !billing) return [];
        const period = row.key.slice('month-closed:'.length);
        const csv = { filename: `statement-${period}.csv`, contentType: 'text/csv; charset=utf-8', content: statementCsv(statement(journal, { from: period, to: period }), billingCfg.currency, billingCfg.minorUnit) };
        const invoices = billing.invoices({ period });
        if (invoices.length > MAX_INVOICES_ATTACHED) return [csv];
        const pdfs = await Promise.all(invoices.map(async (i) => ({ filename: `invoice-${i.number}.pdf`, contentType: 'application/pdf', content: await billing.monthPdf(i.affiliateId, period) })));
        return [csv, ...pdfs];
      };
      notifier = new Notifier(journal, config.notifications, { gateway: config.gateway.name, baseDir, rules, deviceIds: config.devices.map((d) => d.id), probes, attachments }, log.child({ part: 'notify' }));
      notifier.attach();
      notifier.start();
      log.info({ channels: Object.keys(config.notifications.channels) }, 'notifications on');
    }
    for (const dc of config.devices) devices.set(dc.id, createDevice(dc, journal, log, broker, config.gateway.checkpointS * 1000, { dataDir, baseDir }));
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
    const policy = { checkpointMs: config.gateway.checkpointS * 1000, useTypes: useTypeIds(config.useTypes), clock, billing, technicians: config.billing?.technicians ?? [], storage };
    for (const tc of config.tools) tools.set(tc.id, new ToolSessions(tc, toolParts(tc, devices), access, journal, policy, log));
    for (const t of tools.values()) t.start();
    printQueue = new PrintQueue({
      journal,
      dataDir,
      cfg: config.printJobs,
      tools,
      devices,
      billing,
      access,
      useTypes: useTypeIds(config.useTypes),
      storageRefusal: () => storage.refusal(),
      floorBytes: config.gateway.minFreeMb * 1e6,
      log: log.child({ part: 'print-jobs' }),
    });
    printQueue.start();

    const http = config.gateway.http;
    app = buildApp({ name: config.gateway.name, startedAt, devices, tools, journal, billing, ledger, notifier, bridge, broker, storage, access, printQueue, metricsPublic: http.metricsPublic, trustProxy: http.trustProxy, useTypes: config.useTypes }, log);
    const port = opts.httpPort ?? config.gateway.http.port;
    const url = await app.listen({ host: config.gateway.http.host, port });
    if (config.homeassistant) homeassistant = await startHomeAssistant(config, { devices, tools, billing, access, journal }, log);
    log.info({ url }, `HTTP API on ${url}/api/health`);
    if (http.demoTokens) {
      for (const { role, token } of renewDemoTokens(journal, 'ada')) log.info({ role }, `demo ${role} login: ${url}/#token=${token}`);
    }
    return { url, journal, devices, broker, bridge, homeassistant, log, storage, app, stop };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

/** The month before `now`'s (UTC) when it is not closed yet: ready to close. */
function monthToClose(journal: Journal, now: Date): string | null {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  const period = d.toISOString().slice(0, 7);
  const closed = journal.prepared(`SELECT 1 FROM events WHERE kind = 'billing.period-closed' AND json_extract(data, '$.period') = ? LIMIT 1`).get(period);
  return closed ? null : period;
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
  return { switch: devices.get(tc.switch ?? tc.node!) as ToolSwitch, readers, meter, printer: tc.printer ? (devices.get(tc.printer) as ToolPrinter) : null };
}

/** The config schema has checked that a broker is configured for the devices that need it. */
function createDevice(dc: DeviceConfig, journal: Journal, log: Logger, broker: EmbeddedBroker | null, checkpointMs: number, dirs: { dataDir: string; baseDir: string }): Device {
  switch (dc.kind) {
    case 'metering-node':
      return new MeteringNode(dc, journal, log);
    case 'printer':
      return new Printer(dc, journal, log, { checkpointMs, gcodeDir: join(dirs.dataDir, 'gcode', dc.id), baseDir: dirs.baseDir });
    case 'moonraker-printer':
      return new MoonrakerPrinter(dc, journal, log, { checkpointMs });
    case 'prusalink-printer':
      return new PrusalinkPrinter(dc, journal, log, { checkpointMs });
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

/** Home Assistant discovery on the broker Home Assistant uses (the bridge's unless a url is given), loaded only when configured. */
async function startHomeAssistant(
  config: LoadedConfig['config'],
  parts: { devices: ReadonlyMap<string, Device>; tools: ReadonlyMap<string, ToolSessions>; billing: Billing | null; access: AccessStore; journal: Journal },
  log: Logger,
): Promise<HomeAssistantDiscovery> {
  const ha = config.homeassistant!;
  const { HomeAssistantDiscovery } = await import('./mqtt/homeassistant.js');
  const { haNodeId } = await import('./mqtt/homeassistant-config.js');
  const { toolFigures, toolDevices } = await import('./http/tool-figures.js');
  const { setToolStatus, toolStatusOf } = await import('./sessions/projection.js');
  const nodeId = haNodeId(ha, config.gateway.name);
  const own = ha.url !== undefined;
  const settings = {
    url: ha.url ?? config.bridge!.url,
    username: own ? ha.username : config.bridge!.username,
    password: own ? ha.password : config.bridge!.password,
    clientId: ha.clientId ?? `ovn-ha-${nodeId}`,
    nodeId,
    stateTopic: ha.stateTopic ?? `ovn-gateway/${nodeId}`,
  };
  const list = [...parts.tools.values()].map((t) => {
    const d = toolDevices(parts, t);
    const kinds = [...new Set([d.switch, d.meter, d.printer].filter((x) => x !== null).map((x) => x.kind))];
    return { id: t.cfg.id, name: t.cfg.name ?? t.cfg.id, model: kinds.join(', ') || 'tool', meter: d.meter !== null && 'meterTotals' in d.meter, printer: d.printer !== null, currency: parts.billing?.cfg.tools[t.cfg.id] ? parts.billing.cfg.currency : null };
  });
  const discovery = new HomeAssistantDiscovery(
    ha,
    settings,
    {
      gatewayName: config.gateway.name,
      tools: () => list,
      state: (id) => {
        const f = toolFigures(parts, parts.tools.get(id)!);
        return { online: f.online, in_use: f.inUse, blocked: f.blocked, user: f.user, cost: f.cost, session_s: f.sessionS, power_w: f.powerW, energy_wh: f.energyWh, hotend_c: f.hotendC, bed_c: f.bedC, progress_pct: f.progressPct, filament_g: f.filamentG };
      },
      setBlocked: (id, blocked) => {
        // unblocking leaves a tool in maintenance as it is: the switch says only blocked or not
        if (blocked === (toolStatusOf(parts.journal, id).status === 'blocked')) return;
        setToolStatus(parts.journal, id, blocked ? 'blocked' : 'available', blocked ? 'blocked from Home Assistant' : null, 'home-assistant');
      },
    },
    log.child({ part: 'homeassistant' }),
  );
  discovery.start();
  return discovery;
}
