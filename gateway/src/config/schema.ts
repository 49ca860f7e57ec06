/**
 * The configuration file, as one zod schema: the source of the TypeScript types, of the
 * validation at start and of `ovn-gateway config schema` (JSON Schema for editors).
 */
import { z } from 'zod';
import { withArticle } from '../words.js';
import { affiliateSchema } from '../access/store.js';
import { deviceId, filamentSchema, hostPort, meterPhysicsKeys, serialSchema } from './common.js';
import { gpioSwitchSchema } from '../devices/gpio/config.js';
import { rfidReaderSchema } from '../devices/rfid/config.js';
import { mqttBadgeReaderSchema } from '../devices/mqtt-reader/config.js';
import { mqttInstrumentSchema } from '../devices/mqtt-instrument/config.js';
import { moonrakerPrinterSchema } from '../devices/moonraker/config.js';
import { prusalinkPrinterSchema } from '../devices/prusalink/config.js';
import { INSTRUMENT_MODELS } from '../devices/mqtt-instrument/definitions.js';
import { billingSchema } from '../billing/config.js';
import { printJobsSchema } from '../print-jobs/config.js';
import { ledgerSchema } from '../ledger/config.js';
import { notificationsSchema } from '../notify/config.js';
import { brokerSchema } from '../mqtt/config.js';
import { bridgeSchema } from '../mqtt/bridge-config.js';
import { homeassistantSchema } from '../mqtt/homeassistant-config.js';

export { serialSchema };

export const meteringNodeSchema = z.strictObject({
  id: deviceId,
  kind: z.literal('metering-node').describe('A metering node at a tool (firmware-protocol/PROTOCOL.md) on a serial port or a TCP serial bridge: badge reader, relay with feedback contact, energy meter, busy input.'),
  name: z.string().min(1).optional().describe('Display name, e.g. "Prusa MK3S relay node"; default: the id.'),
  nodeId: z.string().max(32).optional().describe('The node id the firmware reports in HELLO; a different one is logged as a warning.'),
  serial: serialSchema,
  livenessHeartbeats: z.number().int().min(2).max(20).default(3).describe('Offline after this many heartbeat intervals without a valid frame.'),
  ...meterPhysicsKeys('the node'),
});

export const printerSchema = z.strictObject({
  id: deviceId,
  kind: z.literal('printer').describe('A 3D printer on USB serial or a TCP serial bridge, spoken to in G-code: Marlin 2.x, Prusa-Firmware or RepRapFirmware.'),
  name: z.string().min(1).optional().describe('Display name, e.g. "Prusa MK3S"; default: the id.'),
  dialect: z.enum(['marlin', 'prusa', 'reprapfirmware']).default('marlin').describe('Firmware family: Marlin 2.x, Prusa MK3 (Prusa-Firmware), RepRapFirmware.'),
  serial: serialSchema,
  filament: filamentSchema,
  pollIntervalS: z.number().int().min(1).max(60).default(2).describe('Seconds between temperature and SD status reports: the M155/M27 S auto-report interval when the firmware offers it, else polling.'),
  timeouts: z
    .strictObject({
      communicationMs: z
        .number()
        .int()
        .min(100)
        .default(5000)
        .describe('Milliseconds without an answer (to the line sent, or to the last poke) after which the gateway pokes the printer with M105. A printer that said nothing at all for that long, not even an auto-report, is unresponsive: within twice this after it falls silent.'),
      maxConsecutive: z.number().int().min(1).default(5).describe('Consecutive timeouts after which the printer is marked lost (offline, its job interrupted) and the port reopened.'),
      startMs: z.number().int().min(0).default(2500).describe('Milliseconds to wait for the boot banner after opening the port (most boards reset when it opens).'),
    })
    .default({ communicationMs: 5000, maxConsecutive: 5, startMs: 2500 })
    .describe('When a silent printer is poked, shown unresponsive, and given up on.'),
  maxConsecutiveResends: z.number().int().min(1).default(10).describe('Resend requests in a row before giving up on the line and reopening the port.'),
  rxBufferBytes: z
    .number()
    .int()
    .min(32)
    .max(65536)
    .default(128)
    .describe(
      "The firmware's serial receive buffer, bytes (Marlin's RX_BUFFER_SIZE). With ADVANCED_OK, the lines in flight never hold more than this less one byte, so none can overflow it; ignored without ADVANCED_OK (one line in flight).",
    ),
  sdPositionPollMs: z
    .number()
    .int()
    .min(50)
    .default(250)
    .describe('While the printer prints from SD, milliseconds between readings of the extruder position (M114) that meter the filament; faster loses less at an E reset.'),
  maxRetractionMm: z
    .number()
    .positive()
    .default(10)
    .describe('SD mode: a drop of E up to this many mm is a retraction; a larger one is a reset (G92 E0), which closes a segment of extrusion.'),
  gcodeFiles: z
    .array(z.string().min(1))
    .default([])
    .describe("G-code files the gateway holds for this printer from the start (paths relative to the config file): a print of one from the printer's own SD card (same name, same size) is metered exactly. More can be given through the API (PUT /api/devices/<id>/files/<name>); every file printed through the gateway is kept too."),
  sdCrossCheckMarginMm: z
    .number()
    .min(0)
    .default(20)
    .describe("SD mode with the file known: by how many mm (beyond the counter's own bias) the file's figure and the printer's print counter may differ before the job is flagged for a custodian."),
  cancelScript: z
    .array(z.string())
    .default(['M104 S0', 'M140 S0', 'G91', 'G1 E-2 F2400', 'G1 Z10 F600', 'G90', 'M107', 'M84'])
    .describe('G-code sent after a cancelled print (by default: heaters off, retract 2 mm, lift 10 mm, fan and motors off); its extrusion is metered with the job.'),
});

export const deviceSchema = z.discriminatedUnion('kind', [meteringNodeSchema, printerSchema, moonrakerPrinterSchema, prusalinkPrinterSchema, gpioSwitchSchema, rfidReaderSchema, mqttBadgeReaderSchema, mqttInstrumentSchema]);

const simulatorCommon = {
  listen: hostPort.describe('TCP address the simulator listens on; point a device at socket://<this>.'),
  scenario: z.string().optional().describe('Scenario file (YAML/JSON) played by the simulator, relative to this config file.'),
  timeScale: z.number().positive().default(1).describe('Simulated seconds per real second.'),
};

const nodeSimulator = z.strictObject({
  kind: z.literal('node').describe('A simulated metering node (as ovn-gateway sim node) listening on TCP.'),
  ...simulatorCommon,
  nodeId: z.string().max(32).default('sim-node').describe('The node id it reports in HELLO.'),
  powerW: z.number().min(0).default(120).describe('Watts drawn while the relay is on and the tool busy.'),
  firmware: z
    .string()
    .optional()
    .describe(
      'A metering-node firmware ELF (firmware-protocol/node-firmware, built with make) to run in simavr instead of the TypeScript simulator, relative to this config file. Its node id is the one it was built with; it runs in real time (timeScale 1).',
    ),
});

const printerSimulator = z.strictObject({
  kind: z.literal('printer').describe('A simulated printer (as ovn-gateway sim printer) listening on TCP, with demo.gcode on its SD card.'),
  ...simulatorCommon,
  dialect: z.enum(['marlin', 'prusa']).default('marlin').describe('The firmware it plays: Marlin 2.x or Prusa MK3.'),
  sdFiles: z.array(z.string().min(1)).default([]).describe('G-code files put on its SD card besides demo.gcode (paths relative to this config file; on the card under their file names).'),
});

const moonrakerSimulator = z.strictObject({
  kind: z.literal('moonraker').describe("A simulated Moonraker host of a Klipper printer (as ovn-gateway sim moonraker), printing from its gcodes folder (demo.gcode and `files`): point a moonraker-printer device's url at http://<listen>."),
  listen: hostPort.describe('Address of its HTTP server and websocket (/websocket).'),
  scenario: simulatorCommon.scenario,
  timeScale: simulatorCommon.timeScale,
  apiKey: z.string().min(1).optional().describe('The API key it requires (X-Api-Key, or api_key when identifying); without it every client is trusted.'),
  files: z.array(z.string().min(1)).default([]).describe('G-code files put in its gcodes folder besides demo.gcode (paths relative to this config file; there under their file names).'),
  linesPerS: z.number().positive().default(200).describe('G-code lines Klipper runs per simulated second.'),
});

const prusalinkSimulator = z.strictObject({
  kind: z.literal('prusalink').describe("A simulated Prusa printer with PrusaLink (as ovn-gateway sim prusalink), printing from its storage (demo.gcode and `files`): point a prusalink-printer device's url at http://<listen>."),
  listen: hostPort.describe('Address of its HTTP server.'),
  scenario: simulatorCommon.scenario,
  timeScale: simulatorCommon.timeScale,
  username: z.string().min(1).default('maker').describe('Digest user name it requires.'),
  password: z.string().min(1).default('sim-password').describe('Digest password it requires.'),
  files: z.array(z.string().min(1)).default([]).describe('G-code files put in its storage besides demo.gcode (paths relative to this config file; there under their file names).'),
  linesPerS: z.number().positive().default(200).describe('G-code lines the printer runs per simulated second.'),
});

const ledgerSimulator = z.strictObject({
  kind: z.literal('ledger').describe('A simulated Valueflows ledger (as ovn-gateway sim ledger): GraphQL on the published vf-graphql 0.9 schema, and the JSON batch API; its records at http://<listen>/records.'),
  listen: hostPort.describe('Address of the simulated ledger (HTTP): point ledger.url at http://<this>.'),
  db: z.string().optional().describe('SQLite file of the simulated ledger, relative to this config file; default in memory.'),
});

const mailSimulator = z.strictObject({
  kind: z.literal('mail').describe('A mail catcher: an SMTP server (plain text, no login) that keeps every message, and a page listing them. Point an email channel at it with tls: none.'),
  listen: hostPort.describe('Address of its SMTP server: the email channel\'s host and port.'),
  http: hostPort.describe('Address of the page listing the mail caught: open http://<this>/.'),
  dir: z.string().optional().describe('Directory where each message is also written as <n>.eml, relative to this config file.'),
});

const rigSimulator = z.strictObject({
  kind: z.literal('rig').describe('A simulated networked instrument (as ovn-gateway sim rig) on the embedded broker.'),
  device: deviceId.describe('The mqtt-instrument device it plays: it connects to the embedded broker as this device, with credentials made for this run only (by the gateway, or by `sim lab` in the journal when it runs apart; that needs a fixed port in mqtt.listen).'),
  model: z.enum(INSTRUMENT_MODELS).default('mosquito-rig').describe('The instrument it plays: the Mosquito sensor rig or a metered smart plug.'),
  scenario: simulatorCommon.scenario,
  timeScale: simulatorCommon.timeScale,
  powerW: z.number().min(0).default(300).describe('Watts drawn while the relay is on and the tool busy.'),
  idleW: z.number().min(0).default(4).describe('Watts drawn while the relay is on and the tool idle.'),
  telemetryIntervalMs: z.number().int().min(50).default(2000).describe('Milliseconds between telemetry messages (it also publishes at every change).'),
});

export const simulatorSchema = z.discriminatedUnion('kind', [nodeSimulator, printerSimulator, moonrakerSimulator, prusalinkSimulator, ledgerSimulator, mailSimulator, rigSimulator]);

export const toolSchema = z
  .strictObject({
    id: deviceId.describe('Stable tool id, used in the journal, the API, qualifications and billing.'),
    name: z.string().min(1).optional().describe('Display name, e.g. "Laser cutter"; default: the id.'),
    node: deviceId.optional().describe('The metering node at the tool: badge reader, relay, energy meter, busy input.'),
    switch: deviceId.optional().describe('What switches the tool: a metering node, a gpio device or an mqtt-instrument; default: the node.'),
    meter: deviceId.optional().describe('What meters the tool and says whether it is busy: a metering node or an mqtt-instrument; default: the node.'),
    readers: z.array(deviceId).default([]).describe('Badge readers at this tool besides the node: rfid-reader or mqtt-badge-reader devices.'),
    printer: deviceId.optional().describe('A printer whose busy state and filament count for this tool: a printer (serial), a moonraker-printer or a prusalink-printer.'),
    handover: z.boolean().default(true).describe('Another qualified affiliate may take over a running session by badging.'),
    idleTimeoutMin: z.number().positive().default(15).describe('Minutes without a busy signal that end the session, after a warning of warnBeforeOffS.'),
    maxDurationH: z.number().positive().default(12).describe('Hours after which the session ends, after the same warning; a busy tool is switched off only once it stops being busy.'),
    warnBeforeOffS: z.number().min(0).default(60).describe('Seconds of warning at the tool (LED, buzzer) before an automatic switch-off.'),
    serviceEveryH: z.number().positive().optional().describe('Run hours between services; the maintenance view counts down to the next one.'),
  })
  .refine((t) => t.node !== undefined || t.switch !== undefined, { message: 'a tool needs a node or a switch to turn it on and off', path: ['switch'] });
export type ToolConfig = z.output<typeof toolSchema>;

const SWITCH_KINDS = ['metering-node', 'gpio', 'mqtt-instrument'];
const METER_KINDS = ['metering-node', 'mqtt-instrument'];
const READER_KINDS = ['metering-node', 'rfid-reader', 'mqtt-badge-reader'];
const PRINTER_KINDS = ['printer', 'moonraker-printer', 'prusalink-printer'];

/** Each tool names devices that exist and are of the right kind; a switch serves one tool. */
function toolReferences(
  cfg: {
    devices: readonly { id: string; kind: string }[];
    tools: readonly { node?: string | undefined; switch?: string | undefined; meter?: string | undefined; printer?: string | undefined; readers: readonly string[] }[];
  },
  ctx: z.RefinementCtx,
): void {
  const kindOf = new Map(cfg.devices.map((d) => [d.id, d.kind]));
  const switchedBy = new Map<string, number>();
  cfg.tools.forEach((t, i) => {
    const refs: [(string | number)[], string | undefined, string[]][] = [
      [['node'], t.node, ['metering-node']],
      [['switch'], t.switch, SWITCH_KINDS],
      [['meter'], t.meter, METER_KINDS],
      [['printer'], t.printer, PRINTER_KINDS],
      ...t.readers.map((r, j): [(string | number)[], string, string[]] => [['readers', j], r, READER_KINDS]),
    ];
    for (const [field, ref, kinds] of refs) {
      if (ref === undefined || kinds.includes(kindOf.get(ref) ?? '')) continue;
      const found = kindOf.get(ref);
      ctx.addIssue({ code: 'custom', path: ['tools', i, ...field], message: found ? `"${ref}" is ${withArticle(found)}, not ${kinds.map(withArticle).join(' or ')}` : `no device "${ref}" in devices` });
    }
    const sw = t.switch ?? t.node;
    if (sw === undefined) return;
    const other = switchedBy.get(sw);
    if (other !== undefined) ctx.addIssue({ code: 'custom', path: ['tools', i, t.switch ? 'switch' : 'node'], message: `"${sw}" already switches tools.${other}` });
    else switchedBy.set(sw, i);
  });
}

/** Networked instruments, readers without a url and simulated rigs need the embedded broker; a simulated rig plays a configured instrument. */
function brokerReferences(cfg: { mqtt?: unknown; devices: readonly { id: string; kind: string; url?: string | undefined }[]; simulators: readonly { kind: string; device?: string }[] }, ctx: z.RefinementCtx): void {
  if (!cfg.mqtt) {
    cfg.devices.forEach((d, i) => {
      if (d.kind === 'mqtt-instrument') ctx.addIssue({ code: 'custom', path: ['devices', i, 'kind'], message: 'an mqtt-instrument connects to the embedded broker: add an mqtt section' });
      if (d.kind === 'mqtt-badge-reader' && d.url === undefined) ctx.addIssue({ code: 'custom', path: ['devices', i, 'url'], message: 'no url: give the broker (mqtt://host:port), or add an mqtt section to read from the embedded broker' });
    });
  }
  cfg.simulators.forEach((s, i) => {
    if (s.kind !== 'rig') return;
    if (!cfg.mqtt) ctx.addIssue({ code: 'custom', path: ['simulators', i, 'kind'], message: 'a simulated rig connects to the embedded broker: add an mqtt section' });
    const kind = cfg.devices.find((d) => d.id === s.device)?.kind;
    if (kind !== 'mqtt-instrument') ctx.addIssue({ code: 'custom', path: ['simulators', i, 'device'], message: kind ? `"${s.device}" is ${withArticle(kind)}, not an mqtt-instrument` : `no device "${s.device}" in devices` });
  });
}

/** A simulated node or rig that counts time faster than life plays a device whose physics allow it. */
function simulatorClockRates(
  cfg: { devices: readonly { id: string; maxClockRate?: number; serial?: { path: string } }[]; simulators: readonly { kind: string; timeScale?: number; listen?: string; device?: string }[] },
  ctx: z.RefinementCtx,
): void {
  cfg.simulators.forEach((s, i) => {
    const played = s.kind === 'rig' ? cfg.devices.find((d) => d.id === s.device) : s.kind === 'node' ? cfg.devices.find((d) => d.serial?.path === `socket://${s.listen}`) : undefined;
    if (played?.maxClockRate === undefined || s.timeScale === undefined || s.timeScale <= played.maxClockRate) return;
    ctx.addIssue({
      code: 'custom',
      path: ['simulators', i, 'timeScale'],
      message: `it counts time ${s.timeScale} times faster than life, and device "${played.id}" allows ${played.maxClockRate}: give that device maxClockRate: ${s.timeScale} or more, or its readings are set aside as implausible`,
    });
  });
}

/** Billed tools exist; tariffs are for configured use types. */
function billingReferences(cfg: { useTypes: readonly UseType[]; tools: readonly { id: string }[]; billing?: { tools: Record<string, { tariffs: Record<string, unknown> }> } | undefined }, ctx: z.RefinementCtx): void {
  for (const [toolId, t] of Object.entries(cfg.billing?.tools ?? {})) {
    if (!cfg.tools.some((x) => x.id === toolId)) ctx.addIssue({ code: 'custom', path: ['billing', 'tools', toolId], message: `no tool "${toolId}" in tools` });
    const ids = useTypeIds(cfg.useTypes);
    for (const useType of Object.keys(t.tariffs)) {
      if (!ids.includes(useType)) ctx.addIssue({ code: 'custom', path: ['billing', 'tools', toolId, 'tariffs', useType], message: `unknown use type "${useType}" (useTypes: ${ids.join(', ')})` });
    }
  }
}

/** Affiliates' default use types are among the configured ones. */
function useTypeReferences(cfg: { useTypes: readonly UseType[]; affiliates: readonly { useType?: string | null | undefined }[] }, ctx: z.RefinementCtx): void {
  const ids = useTypeIds(cfg.useTypes);
  ids.forEach((id, i) => {
    if (ids.indexOf(id) !== i) ctx.addIssue({ code: 'custom', path: ['useTypes', i], message: `duplicate use type "${id}"` });
  });
  cfg.affiliates.forEach((a, i) => {
    if (a.useType != null && !ids.includes(a.useType)) {
      ctx.addIssue({ code: 'custom', path: ['affiliates', i, 'useType'], message: `unknown use type "${a.useType}" (useTypes: ${ids.join(', ')})` });
    }
  });
}

const useTypeId = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, dots, dashes and underscores');
const useTypeSchema = z
  .union([
    useTypeId,
    z.strictObject({
      id: useTypeId.describe('The use type, as tariffs and the journal name it.'),
      selfService: z.boolean().default(false).describe('An affiliate may switch their own running session to it; otherwise only a custodian, maintainer or admin may (a cheaper use type is a custodian\'s decision).'),
    }),
  ])
  .transform((u) => (typeof u === 'string' ? { id: u, selfService: false } : u));
export type UseType = z.output<typeof useTypeSchema>;
export const useTypeIds = (useTypes: readonly UseType[]): string[] => useTypes.map((u) => u.id);

function uniqueIds(devices: readonly { id?: unknown }[], ctx: z.RefinementCtx): void {
  const seen = new Map<unknown, number>();
  devices.forEach((d, i) => {
    if (typeof d?.id !== 'string') return;
    const first = seen.get(d.id);
    if (first !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate device id "${d.id}" (also devices.${first}.id)` });
    else seen.set(d.id, i);
  });
}

export const configSchema = z
  .strictObject({
    gateway: z
      .strictObject({
        name: z.string().min(1).default('ovn-gateway').describe('Name of this gateway (the lab or the tool group), shown in health.'),
        dataDir: z.string().min(1).default('./data').describe('Directory of the SQLite journal (journal.sqlite); relative to the config file.'),
        http: z
          .strictObject({
            host: z.string().min(1).default('127.0.0.1').describe('Address the HTTP API and the dashboard listen on; 0.0.0.0 for the lab network.'),
            port: z.number().int().min(0).max(65_535).default(8080).describe('TCP port of the HTTP API and the dashboard; ovn-gateway run --http-port overrides it.'),
            demoTokens: z.boolean().default(false).describe('For a demonstration: make one API token per role at every start and log their login links. Never on a real lab.'),
            metricsPublic: z.boolean().default(false).describe('Serve /metrics without a token (for a Prometheus on a trusted network).'),
            trustProxy: z
              .array(z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()], { error: 'an IP address or a CIDR range (10.0.0.0/8)' }))
              .default([])
              .describe("Reverse proxies in front of the gateway (addresses or CIDR ranges): a request from one of them names its client in X-Forwarded-For, which counts wrong tokens per client. From any other address the header is ignored; empty: always ignored."),
          })
          .default({ host: '127.0.0.1', port: 8080, demoTokens: false, metricsPublic: false, trustProxy: [] })
          .describe('The HTTP API and the dashboard.'),
        log: z
          .strictObject({
            level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').describe('The least severe level logged.'),
            format: z.enum(['auto', 'json', 'pretty']).default('auto').describe('json: one JSON object a line (for journald); pretty: readable; auto: pretty on a terminal, JSON otherwise.'),
          })
          .default({ level: 'info', format: 'auto' })
          .describe('The log, on standard output (the systemd journal on a Pi).'),
        checkpointS: z.number().min(1).max(300).default(5).describe("Seconds between saves of open sessions' meters and running print jobs' progress; a crash or power cut loses at most this much usage."),
        minFreeMb: z.number().min(0).default(100).describe('Free space the data directory must keep, in MB; below it new sessions are refused and health says so.'),
      })
      .default({ name: 'ovn-gateway', dataDir: './data', http: { host: '127.0.0.1', port: 8080, demoTokens: false, metricsPublic: false, trustProxy: [] }, log: { level: 'info', format: 'auto' }, checkpointS: 5, minFreeMb: 100 })
      .describe('This gateway: its name, data directory, HTTP API, log and storage limits.'),
    devices: z
      .array(deviceSchema)
      .superRefine(uniqueIds, { when: () => true }) // also when some devices have other problems: list every problem at once
      .default([])
      .describe('The devices this gateway talks to, each of a kind; the ids are unique and used in the journal and the API.'),
    simulators: z.array(simulatorSchema).default([]).describe('Simulated devices for a simulated lab: `ovn-gateway run` starts them before the gateway in the same process (unless --no-simulators), `ovn-gateway sim lab` in a process of their own. A config without them never loads simulator code.'),
    tools: z
      .array(toolSchema)
      .default([])
      .describe('Shared tools, each assembled from devices by their roles (node, switch, meter, readers, printer), with its access and session rules; each needs a node or a switch.'),
    useTypes: z
      .array(useTypeSchema)
      .min(1)
      .prefault(['commercial', 'community', 'project'])
      .describe('Kinds of use a session can have (tariffs differ by them), each an id or { id, selfService }; the first is the default for affiliates without one. An affiliate may switch their running session only to a self-service one; staff change any.'),
    ledger: ledgerSchema.optional().describe("The network's ledger; without it nothing is sent (the journal keeps everything)."),
    mqtt: brokerSchema.optional().describe('The embedded MQTT broker for networked instruments and readers; without it none is started.'),
    bridge: bridgeSchema.optional().describe("A client to the network's MQTT broker; without it nothing is published upstream."),
    homeassistant: homeassistantSchema
      .optional()
      .describe("Home Assistant MQTT discovery (docs/home-assistant.md): every tool appears in Home Assistant as a device; without it nothing is announced."),
    billing: billingSchema.optional().describe('Tariffs, materials, technician rate and co-owner agreements; without it sessions are recorded but not charged.'),
    printJobs: printJobsSchema
      .prefault({})
      .describe('Print jobs sent from a slicer through the OctoPrint-compatible API (/octoprint/<tool>/) or the API: file size, quota, how long a queued job waits for its owner\'s badge, how long files are kept (docs/printing-from-slicers.md).'),
    notifications: notificationsSchema.optional().describe('Receipts, switch-off warnings and alerts to people by e-mail, webhook, ntfy or Matrix (docs/notifications.md); without it nobody is told.'),
    affiliates: z
      .array(affiliateSchema)
      .default([])
      .describe('Seed data: affiliates added to the local allow-list at start when not known yet; after that the CLI manages them.'),
  })
  .superRefine((cfg, ctx) => {
    toolReferences(cfg, ctx);
    brokerReferences(cfg, ctx);
    if (cfg.homeassistant && cfg.homeassistant.url === undefined && !cfg.bridge) {
      ctx.addIssue({ code: 'custom', path: ['homeassistant', 'url'], message: "no url: give Home Assistant's broker (mqtt://host:port), or add a bridge section whose broker Home Assistant uses" });
    }
    simulatorClockRates(cfg, ctx);
    useTypeReferences(cfg, ctx);
    billingReferences(cfg, ctx);
  });

export type Config = z.output<typeof configSchema>;
export type DeviceConfig = z.output<typeof deviceSchema>;
export type MeteringNodeConfig = Extract<DeviceConfig, { kind: 'metering-node' }>;
export type PrinterConfig = Extract<DeviceConfig, { kind: 'printer' }>;
export type MoonrakerPrinterConfig = Extract<DeviceConfig, { kind: 'moonraker-printer' }>;
export type PrusalinkPrinterConfig = Extract<DeviceConfig, { kind: 'prusalink-printer' }>;
export type SerialConfig = z.output<typeof serialSchema>;
export type SimulatorConfig = z.output<typeof simulatorSchema>;

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
