/** Home Assistant MQTT discovery: each tool appears in Home Assistant as a device with its entities. */
import { z } from 'zod';
import { BASE_TOPIC } from './config.js';

const TOPIC_LEVEL = /^[A-Za-z0-9_-]+$/;

export const homeassistantSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^mqtts?:\/\/[^\s/]+/, 'mqtt://host:port or mqtts://host:port')
      .optional()
      .describe("The MQTT broker Home Assistant uses, e.g. mqtt://homeassistant.local:1883; default: the bridge's broker (with its user name and password)."),
    username: z.string().min(1).optional().describe('User name on that broker, with password; default: the bridge\'s when url is not given.'),
    password: z.string().min(1).optional().describe('Keep the config file readable by the service only.'),
    clientId: z.string().min(1).max(128).optional().describe('Client id on that broker; default ovn-ha-<nodeId>.'),
    discoveryPrefix: z
      .string()
      .regex(BASE_TOPIC, 'levels of letters, digits, dots, dashes and underscores separated by /')
      .default('homeassistant')
      .describe("Home Assistant's discovery prefix (its MQTT integration's setting; homeassistant unless changed there)."),
    nodeId: z
      .string()
      .max(64)
      .regex(TOPIC_LEVEL, 'letters, digits, dashes and underscores, e.g. fablab_nord')
      .optional()
      .describe("This gateway in discovery topics and unique ids; default: the gateway's name in lower case, other characters as _. Keep it stable: Home Assistant keys its entities by it."),
    stateTopic: z
      .string()
      .max(128)
      .regex(BASE_TOPIC, 'levels of letters, digits, dots, dashes and underscores separated by /, e.g. ovn/fablab-nord/ha')
      .optional()
      .describe("Where the tools' states and availability are published (retained); default ovn-gateway/<nodeId>."),
    intervalS: z.number().min(1).max(3600).default(10).describe('Seconds between looks at the tools; a state is published when it changed.'),
    maintainerSwitch: z
      .boolean()
      .default(false)
      .describe('A "Blocked" switch per tool that blocks and unblocks it from Home Assistant, journaled as by home-assistant. Anyone who may publish to the broker can then block a tool: only with a broker whose ACL keeps its command topics to Home Assistant.'),
  })
  .describe('Home Assistant MQTT discovery: each tool appears as a device (in use, current user, cost, session time, power, energy, printer temperatures, job progress, filament) on the broker Home Assistant uses. Needs url, or a bridge section whose broker Home Assistant uses.');

export type HomeAssistantConfig = z.output<typeof homeassistantSchema>;

/** The node id: configured, or the gateway's name made safe for a topic level. */
export const haNodeId = (cfg: Pick<HomeAssistantConfig, 'nodeId'>, gatewayName: string): string =>
  cfg.nodeId ?? (gatewayName.toLowerCase().replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 64) || 'ovn_gateway');
