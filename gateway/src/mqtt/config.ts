/** The embedded MQTT broker that networked instruments and readers connect to. */
import { z } from 'zod';
import { hostPort, splitHostPort } from '../config/common.js';

const port = z.number().int().min(0).max(65_535);

/** Topic levels of letters, digits, dots, dashes and underscores: safe in every firmware and dashboard. */
export const BASE_TOPIC = /^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*$/;

export const baseTopicSchema = z
  .string()
  .max(128)
  .regex(BASE_TOPIC, 'levels of letters, digits, dots, dashes and underscores separated by /, e.g. ovn/fablab-nord (no wildcards, no leading $ or /)')
  .describe('Every topic of this lab starts with it, e.g. ovn/fablab-nord. Firmware and dashboards depend on it: keep it stable.');

export const brokerSchema = z
  .strictObject({
    listen: hostPort.default('127.0.0.1:1883').describe('Address of the MQTT listener (TCP); 0.0.0.0:1883 for devices on the lab network.'),
    baseTopic: baseTopicSchema,
    tls: z
      .strictObject({
        port: port.describe('Port of MQTT over TLS, on the listen host (8883 by convention).'),
        cert: z.string().min(1).describe('PEM certificate (chain) file, relative to the config file.'),
        key: z.string().min(1).describe('PEM private key file, relative to the config file; readable by the service only.'),
      })
      .optional()
      .describe('MQTT over TLS as well, for devices that can check a certificate.'),
    websocket: z
      .strictObject({ port: port.describe('Port of MQTT over WebSocket (ws://host:port/mqtt), on the listen host.') })
      .optional()
      .describe('MQTT over WebSocket as well (for browsers; put a TLS-terminating proxy in front for wss://).'),
    maxPacketBytes: z
      .number()
      .int()
      .min(256)
      .max(268_435_455)
      .default(16_384)
      .describe('A client sending a larger MQTT packet is disconnected as soon as its header announces the size.'),
    connectionsPerMinute: z
      .number()
      .int()
      .min(1)
      .default(60)
      .describe('Connection attempts allowed per client IP address and minute (a burst of this many, then one every 60/n s); more are closed before any password check.'),
    maxSubscriptionsPerClient: z.number().int().min(1).max(10_000).default(10).describe('Topic filters one client may hold; more are refused (SUBACK 0x80).'),
    heartbeatTimeoutS: z
      .number()
      .positive()
      .optional()
      .describe('A connected device that publishes nothing valid for this many seconds is offline (its firmware is stuck while the MQTT stack still answers pings). Without it, availability follows the connection, the status and the last will.'),
    commandTimeoutMs: z.number().int().min(10).max(600_000).default(5000).describe('Milliseconds a command waits for its reply; a command never reaches a device after this.'),
    healthIntervalS: z.number().min(1).max(3600).default(60).describe('Seconds between health summaries (published retained).'),
  })
  .superRefine((c, ctx) => {
    const ports: [string, number][] = [['listen', splitHostPort(c.listen).port]];
    if (c.tls) ports.push(['tls', c.tls.port]);
    if (c.websocket) ports.push(['websocket', c.websocket.port]);
    ports.forEach(([key, p], i) => {
      const other = ports.findIndex(([, q], j) => j < i && q === p && p !== 0);
      if (other >= 0) ctx.addIssue({ code: 'custom', path: key === 'listen' ? [key] : [key, 'port'], message: `port ${p} is already used by ${ports[other]![0]}` });
    });
  })
  .describe('The embedded MQTT broker: networked instruments and badge readers connect to it with their own credentials (ovn-gateway devices add-mqtt).');

export type BrokerConfig = z.output<typeof brokerSchema>;
