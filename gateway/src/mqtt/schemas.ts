/**
 * Every MQTT payload as a zod schema: the broker validates device messages with them, the
 * TypeScript types come from them, and `npm run schemas` writes them as JSON Schema files
 * for firmware authors (firmware-protocol/mqtt-schemas/).
 *
 * Every payload is one JSON object in UTF-8. What devices send is read leniently about
 * fields it does not know (firmware may add its own, such as an RSSI); what the gateway
 * sends is exact.
 */
import { z } from 'zod';
import { excerpt, tapJsonSchema } from '../devices/mqtt-reader/payload.js';
import { INDICATE_PATTERN } from '../../../firmware-protocol/src/messages.js';

const u32 = z.number().int().min(0).max(0xffff_ffff);
const count = z.number().int().min(0);
const state = z.enum(['online', 'offline']);

/** A command's id, chosen by the gateway and echoed in the reply. */
const transaction = z.string().min(1).max(64).describe('Chosen by the gateway for each command; the reply carries it back unchanged.');

// ---- device → gateway ----

export const faultSchema = z.object({
  code: z.string().min(1).max(32).describe('The firmware\'s name or number for the fault, e.g. "overcurrent" or "17".'),
  severity: z.enum(['warning', 'error', 'critical']).describe('error and critical end a running session at the tool.'),
  text: z.string().max(64).optional().describe('For the person reading the log.'),
});

export const telemetrySchema = z
  .object({
    seq: u32.describe('+1 for each telemetry message of this boot (a gap is a lost message); wraps to 0 after 2^32 - 1.'),
    bootId: u32.describe('A random number drawn at each boot: counters restart from zero with a new one, and the gateway keeps its totals.'),
    uptimeS: z.number().min(0).describe('Seconds since boot.'),
    counters: z
      .object({
        runtimeS: z.number().min(0).describe('Seconds the tool has been powered since boot.'),
        activeS: z.number().min(0).optional().describe('Seconds the tool has been busy since boot; without it, runtimeS is the active time of a session.'),
        samples: count.describe('Meter samples taken since boot.'),
        energyWh: z.number().min(0).describe('Energy used since boot, Wh.'),
      })
      .describe('Cumulative since boot, never reset otherwise: a lost or repeated message neither loses nor counts anything twice.'),
    busy: z.boolean().describe('The tool is working (spindle turning, laser firing, printing): its power is never cut while busy.'),
    powerW: z.number().min(0).optional().describe('Power drawn now, W.'),
    relay: z.boolean().optional().describe("The tool's relay (or enable line) as it is now; publish telemetry at once when it changes (a reboot that leaves it off, a local switch)."),
    faults: z.array(faultSchema).max(16).optional().describe('The faults active now (an empty list: none); absent: this device reports no faults.'),
  })
  .describe('A measurement, every few seconds and on every change of busy, relay or faults. QoS 1, not retained.');

export const statusSchema = z
  .object({
    state: state.describe('online in the birth message after connecting; offline in the last will and before a clean disconnect.'),
    session: u32
      .optional()
      .describe('+1 at every connection (keep it across reboots, or start from a random number): the birth and the will of a connection carry the same value, so a stale will from an older connection is ignored.'),
  })
  .describe('Retained. Publish {"state":"online","session":n} after connecting, with {"state":"offline","session":n} (retained) as the last will.');

/** The badge UID syntax the gateway accepts, spelled out for JSON Schema (the parser also trims spaces). */
const UID_PATTERN = '^[0-9A-Fa-f]{2}(?:([:\\- ]?)[0-9A-Fa-f]{2}(?:\\1[0-9A-Fa-f]{2}){0,8})?$';

export const badgeSchema = tapJsonSchema
  .extend({ uid: tapJsonSchema.shape.uid.meta({ pattern: UID_PATTERN, examples: ['04A1B2C3', '04:a1:b2:c3:d4:e5:f6'] }) })
  .describe('One message per tap (a card held on the reader is one tap), QoS 1, never retained.');

export const replySchema = z
  .object({
    transaction,
    ok: z.boolean().describe('Whether the command was carried out.'),
    message: z.string().max(256).optional().describe('Why not, or what happened, for the log.'),
  })
  .describe('The answer to a command, within the command timeout (5 s by default). QoS 1, not retained.');

// ---- gateway → devices and consumers ----

const relayCommand = z.strictObject({
  transaction,
  command: z.literal('relay').describe("Switch the tool's power."),
  on: z.boolean(),
});
const enableCommand = z.strictObject({
  transaction,
  command: z.literal('enable').describe("Allow or stop use through the tool's enable (interlock) line, its power staying as it is."),
  on: z.boolean(),
});
const indicateCommand = z.strictObject({
  transaction,
  command: z.literal('indicate').describe('Show a result at the tool: LEDs, buzzer, display.'),
  pattern: z.enum(INDICATE_PATTERN),
  durationMs: z.number().int().min(0).max(60_000).optional(),
  text: z.string().max(32).optional().describe('For a display.'),
});
const rebirthCommand = z.strictObject({
  transaction,
  command: z.literal('rebirth').describe('Publish the status and a telemetry message now (after the gateway restarted, say).'),
});

export const commandSchema = z
  .discriminatedUnion('command', [relayCommand, enableCommand, indicateCommand, rebirthCommand])
  .describe('A command to one device, QoS 1, never retained. Reply on the reply topic with the same transaction within the timeout; a command is never delivered after it.');

export const availabilitySchema = z
  .strictObject({
    state,
    since: z.iso.datetime().describe('When the device went into this state.'),
    reason: z.string().optional().describe('Why it is offline.'),
  })
  .describe("The gateway's view of a device: online while it is connected, has not said it is offline and (with heartbeatTimeoutS) publishes. Retained, published only when it changes.");

export const gatewayStateSchema = z
  .strictObject({
    state,
    version: z.string().optional(),
    at: z.iso.datetime().optional(),
  })
  .describe('Retained: online when the gateway starts, offline when it stops cleanly (a bridge to another broker uses {"state":"offline"} as its last will).');

export const sessionEventSchema = z
  .strictObject({
    event: z.enum(['started', 'ended']),
    sessionId: z.string(),
    toolId: z.string(),
    affiliateId: z.string(),
    useType: z.string().optional(),
    at: z.iso.datetime(),
    reason: z.string().optional().describe('Why it ended.'),
    usage: z
      .strictObject({ durationS: z.number().min(0), activeS: z.number().min(0), energyWh: z.number().min(0), filamentG: z.number().min(0) })
      .optional()
      .describe('What the session used, when it ended.'),
  })
  .describe('A usage session started or ended at a tool. QoS 1, not retained.');

/** Why the broker refused a connection, a subscription or a message; the health summary counts each. */
export const REJECTION_REASONS = [
  'rate-limited',
  'anonymous',
  'bad-credentials',
  'client-id-mismatch',
  'packet-too-large',
  'publish-denied',
  'subscribe-denied',
  'subscription-cap',
  'malformed',
  'invalid',
  'stale-status',
] as const;
export type RejectionReason = (typeof REJECTION_REASONS)[number];

export const healthSchema = z
  .strictObject({
    at: z.iso.datetime(),
    uptimeS: z.number().min(0),
    clients: z.strictObject({ connected: count, devices: count.describe('Of which devices.') }),
    devices: z.strictObject({ online: count, offline: count }),
    messages: z.strictObject({
      in: count.describe('Messages accepted from clients.'),
      out: count.describe('Messages delivered to clients.'),
      dispatched: count.describe("Device messages handed to the gateway's consumers."),
    }),
    rejected: z.strictObject(Object.fromEntries(REJECTION_REASONS.map((r) => [r, count])) as Record<RejectionReason, typeof count>),
  })
  .describe("The broker's health, retained, every healthIntervalS.");

export type Fault = z.output<typeof faultSchema>;
export type Telemetry = z.output<typeof telemetrySchema>;
export type Status = z.output<typeof statusSchema>;
export type Badge = z.output<typeof badgeSchema>;
export type Reply = z.output<typeof replySchema>;
export type Command = z.output<typeof commandSchema>;
/** A command before the broker gives it a transaction id. */
export type CommandInput = Command extends infer C ? (C extends { transaction: string } ? Omit<C, 'transaction'> : never) : never;
export type Availability = z.output<typeof availabilitySchema>;
export type GatewayState = z.output<typeof gatewayStateSchema>;
export type SessionEvent = z.output<typeof sessionEventSchema>;
export type Health = z.output<typeof healthSchema>;

/** What devices publish, by the last level of the topic. */
export const DEVICE_PAYLOADS = {
  telemetry: telemetrySchema,
  status: statusSchema,
  badge: badgeSchema,
  reply: replySchema,
} as const;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A device's message checked against the schema of its topic; when it fails, what was wrong, in words for the log. */
export function parseDevicePayload(
  kind: keyof typeof DEVICE_PAYLOADS,
  payload: Buffer | string,
): { ok: true; value: unknown } | { ok: false; reason: 'malformed' | 'invalid'; problem: string } {
  if (payload.length === 0) return { ok: false, reason: 'malformed', problem: 'empty payload (expected a JSON object)' };
  let text: string;
  try {
    text = typeof payload === 'string' ? payload : utf8.decode(payload);
  } catch {
    return { ok: false, reason: 'malformed', problem: `not UTF-8 text: ${payload.length} bytes of binary data` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: 'malformed', problem: `not JSON (${(err as Error).message}): ${excerpt(text)}` };
  }
  const r = DEVICE_PAYLOADS[kind].safeParse(json);
  if (r.success) return { ok: true, value: r.data };
  const problem = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'payload'}: ${i.message}`).join('; ');
  return { ok: false, reason: 'invalid', problem: `not a valid ${kind} message: ${problem}` };
}

/** Every payload: its JSON Schema file, its topic, and which side writes it. */
export const PAYLOADS = [
  { file: 'telemetry.json', title: 'Telemetry', topic: '<base>/devices/<id>/telemetry', from: 'device', schema: telemetrySchema },
  { file: 'status.json', title: 'Status', topic: '<base>/devices/<id>/status', from: 'device', schema: statusSchema },
  { file: 'badge.json', title: 'Badge tap', topic: '<base>/devices/<id>/badge', from: 'device', schema: badgeSchema },
  { file: 'reply.json', title: 'Command reply', topic: '<base>/devices/<id>/reply', from: 'device', schema: replySchema },
  { file: 'command.json', title: 'Command', topic: '<base>/devices/<id>/command', from: 'gateway', schema: commandSchema },
  { file: 'availability.json', title: 'Device availability', topic: '<base>/devices/<id>/availability', from: 'gateway', schema: availabilitySchema },
  { file: 'gateway-state.json', title: 'Gateway state', topic: '<base>/gateway/state', from: 'gateway', schema: gatewayStateSchema },
  { file: 'session-event.json', title: 'Session event', topic: '<base>/gateway/sessions', from: 'gateway', schema: sessionEventSchema },
  { file: 'health.json', title: 'Broker health', topic: '<base>/gateway/health', from: 'gateway', schema: healthSchema },
] as const;

/**
 * The JSON Schema files, by file name, as written to firmware-protocol/mqtt-schemas/: what a
 * device may send (the input side of its schema) and what the gateway sends (the output side).
 */
export function jsonSchemaFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const p of PAYLOADS) {
    const { $schema, ...body } = z.toJSONSchema(p.schema, { target: 'draft-2020-12', io: p.from === 'device' ? 'input' : 'output' }) as Record<string, unknown>;
    const doc = { $schema, title: `${p.title} (${p.topic}, ${p.from === 'device' ? 'published by devices' : 'published by the gateway'})`, ...body };
    files.set(p.file, JSON.stringify(doc, null, 2) + '\n');
  }
  return files;
}
