/** Config of a networked badge reader that publishes taps over MQTT (e.g. an ESP32 with an RC522). */
import { z } from 'zod';
import { deviceId } from '../../config/common.js';

/** Why a broker URL cannot be used, or null when it can. */
function brokerUrlProblem(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a URL';
  }
  if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') return `the scheme must be mqtt:// or mqtts://, not ${url.protocol}//`;
  if (!url.hostname) return 'the host is missing';
  // Credentials in the URL would end up in health and logs; they have their own settings.
  if (url.username || url.password) return 'put the credentials in username and password, not in the URL';
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) return 'a broker URL has no path, query or fragment';
  if (url.port !== '' && Number(url.port) === 0) return 'port 0 is not a broker port';
  return null;
}

const brokerUrl = z
  .string()
  .superRefine((text, ctx) => {
    const problem = brokerUrlProblem(text);
    if (problem) ctx.addIssue({ code: 'custom', message: `${problem}: expected mqtt://host:port or mqtts://host:port, e.g. mqtt://127.0.0.1:1883` });
  })
  .describe('The MQTT broker: mqtt://host:port (1883 when omitted) or mqtts://host:port (TLS, 8883 when omitted).');

/** A topic a client may publish on: no wildcards, not a broker's own `$…` topic (MQTT 3.1.1 §4.7). */
const topicName = z
  .string()
  .min(1, 'a topic cannot be empty')
  .refine((t) => !t.includes('+') && !t.includes('#'), 'name one topic: wildcards (+ and #) are not allowed')
  .refine((t) => !t.startsWith('$'), 'topics starting with $ belong to the broker')
  .refine((t) => !t.includes('\u0000'), 'a topic cannot contain the NUL character')
  .refine((t) => Buffer.byteLength(t, 'utf8') <= 65_535, 'a topic is at most 65535 bytes');

export const mqttBadgeReaderSchema = z
  .strictObject({
    id: deviceId,
    kind: z.literal('mqtt-badge-reader').describe('A networked badge reader that publishes taps over MQTT (e.g. an ESP32 with an RC522).'),
    name: z.string().min(1).optional().describe('Display name, e.g. "Printer room door reader"; default: the id.'),
    url: brokerUrl
      .optional()
      .describe("The MQTT broker: mqtt://host:port or mqtts://host:port. Without it: the gateway's embedded broker (the mqtt section), read as one of the gateway's own clients, with no credentials to configure."),
    username: z.string().min(1).optional().describe('User name at the broker.'),
    password: z.string().optional().describe('Password at the broker; never shown in health or logs.'),
    topic: topicName.describe('The topic the reader publishes taps on, e.g. "lab/readers/printer-door/badge": JSON {"uid": "04A1B2C3"} or the UID as hex text.'),
    statusTopic: topicName
      .optional()
      .describe('Retained "online"/"offline" the reader publishes, with "offline" as its last will; when given, the device is offline while the reader says so.'),
    repeatGapMs: z
      .number()
      .int()
      .min(0)
      .max(60_000)
      .default(1000)
      .describe('The same badge again within this many milliseconds of its last read is the card still held on the reader, not a new tap.'),
  })
  .refine((c) => c.statusTopic === undefined || c.statusTopic !== c.topic, { path: ['statusTopic'], message: 'the status topic must differ from the tap topic' })
  .describe('A networked badge reader that publishes taps over MQTT.');

export type MqttBadgeReaderConfig = z.output<typeof mqttBadgeReaderSchema>;
