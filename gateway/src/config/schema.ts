/**
 * The configuration file, as one zod schema: the source of the TypeScript types, of the
 * validation at start and of `ovn-gateway config schema` (JSON Schema for editors).
 */
import { z } from 'zod';

const hostPort = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:7101');

const backoff = z
  .strictObject({
    initialMs: z.number().int().min(10).default(500).describe('First reconnect delay.'),
    maxMs: z.number().int().min(100).default(30_000).describe('Reconnect delays double up to this cap.'),
  })
  .default({ initialMs: 500, maxMs: 30_000 })
  .describe('Reconnect forever with capped exponential backoff (with jitter).');

export const serialSchema = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .refine((p) => !p.startsWith('socket://') || /^socket:\/\/[^\s:/]+:\d{1,5}$/.test(p), 'a TCP bridge is written socket://host:port, e.g. socket://192.168.1.20:4000')
      .describe('Serial device (prefer /dev/serial/by-id/…, stable across re-plugging) or socket://host:port for a TCP serial bridge (ser2net, ESP bridges).'),
    baudRate: z.number().int().positive().default(115_200),
    reconnect: backoff,
  })
  .describe('How to reach the device over serial.');

const meteringNode = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes, starting with a letter or digit').describe('Stable device id, used in topics, the journal and the API.'),
  kind: z.literal('metering-node'),
  name: z.string().min(1).optional().describe('Display name, e.g. "Prusa MK3S relay node".'),
  nodeId: z.string().max(32).optional().describe('The node id the firmware reports in HELLO; a different one is logged as a warning.'),
  serial: serialSchema,
  livenessHeartbeats: z.number().int().min(2).max(20).default(3).describe('Offline after this many heartbeat intervals without a valid frame.'),
});

export const deviceSchema = z.discriminatedUnion('kind', [meteringNode]);

const nodeSimulator = z.strictObject({
  kind: z.literal('node'),
  listen: hostPort.describe('TCP address the simulated node listens on; point a device at socket://<this>.'),
  nodeId: z.string().max(32).default('sim-node'),
  scenario: z.string().optional().describe('Scenario file (YAML/JSON) played by the simulator, relative to this config file.'),
  powerW: z.number().min(0).default(120).describe('Power drawn while the relay is on.'),
});

export const simulatorSchema = z.discriminatedUnion('kind', [nodeSimulator]);

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
        name: z.string().min(1).default('ovn-gateway').describe('Name of this gateway (the lab or the tool group).'),
        dataDir: z.string().min(1).default('./data').describe('Directory for the SQLite journal; relative to the config file.'),
        http: z
          .strictObject({
            host: z.string().min(1).default('127.0.0.1'),
            port: z.number().int().min(0).max(65_535).default(8080),
          })
          .default({ host: '127.0.0.1', port: 8080 }),
        log: z
          .strictObject({
            level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
            format: z.enum(['auto', 'json', 'pretty']).default('auto').describe('auto: readable in a terminal, JSON otherwise.'),
          })
          .default({ level: 'info', format: 'auto' }),
      })
      .default({ name: 'ovn-gateway', dataDir: './data', http: { host: '127.0.0.1', port: 8080 }, log: { level: 'info', format: 'auto' } }),
    devices: z
      .array(deviceSchema)
      .superRefine(uniqueIds, { when: () => true }) // also when some devices have other problems: list every problem at once
      .default([])
      .describe('The tools and metering nodes this gateway talks to.'),
    simulators: z.array(simulatorSchema).default([]).describe('Simulated devices started inside the gateway process (for a simulated lab).'),
  });

export type Config = z.output<typeof configSchema>;
export type DeviceConfig = z.output<typeof deviceSchema>;
export type MeteringNodeConfig = Extract<DeviceConfig, { kind: 'metering-node' }>;
export type SerialConfig = z.output<typeof serialSchema>;
export type SimulatorConfig = z.output<typeof simulatorSchema>;

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
