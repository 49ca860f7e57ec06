/** The bridge to the network's MQTT broker (Mosquitto, EMQX, HiveMQ…): what this gateway reports upstream. */
import { z } from 'zod';
import { BASE_TOPIC } from './config.js';

export const bridgeSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^mqtts?:\/\/[^\s/]+/, 'mqtt://host:port or mqtts://host:port')
      .describe("The network's broker, e.g. mqtts://mqtt.example.org:8883."),
    username: z.string().min(1).optional().describe('User name on the upstream broker, with password.'),
    password: z.string().min(1).optional().describe('Keep the config file readable by the service only.'),
    clientId: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe('Client id on the upstream broker; default ovn-<prefix> with / as -. Two gateways with the same id keep disconnecting each other.'),
    prefix: z
      .string()
      .max(128)
      .regex(BASE_TOPIC, 'levels of letters, digits, dots, dashes and underscores separated by /, e.g. ovn/labs/montreal')
      .describe('Every topic this gateway publishes upstream starts with it, e.g. ovn/labs/montreal.'),
    bufferMessages: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(1000)
      .describe('Messages kept while the upstream broker is unreachable; past it the oldest events are dropped and counted (the ledger outbox, not MQTT, is the record of usage).'),
    healthIntervalS: z.number().min(1).max(3600).default(60).describe('Seconds between health summaries (published retained).'),
  })
  .describe("A client to the network's MQTT broker publishing gateway state, device availability, session events and health; without it nothing is published upstream.");

export type BridgeConfig = z.output<typeof bridgeSchema>;

/** The default client id: the prefix with its slashes made dashes, so that it is readable in any broker's client list. */
export const bridgeClientId = (cfg: Pick<BridgeConfig, 'clientId' | 'prefix'>): string => cfg.clientId ?? `ovn-${cfg.prefix.replaceAll('/', '-')}`;
