/** Config of a networked instrument on the embedded MQTT broker (a Mosquito sensor rig, a smart plug). */
import { z } from 'zod';
import { deviceId, meterPhysicsKeys } from '../../config/common.js';
import { INSTRUMENT_MODELS } from './definitions.js';

export const mqttInstrumentSchema = z
  .strictObject({
    id: deviceId.describe('Stable device id: also its MQTT client id, user name (ovn-gateway devices add-mqtt <id>) and topic level.'),
    kind: z.literal('mqtt-instrument').describe('A networked instrument on the embedded MQTT broker (needs the mqtt section): the Mosquito sensor rig or a metered smart plug.'),
    name: z.string().min(1).optional().describe('Display name, e.g. "Mosquito rig, bench 2"; default: the id.'),
    model: z.enum(INSTRUMENT_MODELS).default('mosquito-rig').describe('mosquito-rig: busy and faults as the sensor rig reports them; smart-plug: busy while drawing more than busyAboveW, no faults, no indicator.'),
    switchCommand: z.enum(['relay', 'enable']).default('relay').describe("How a session switches the tool: its power (relay) or its enable (interlock) line."),
    busyAboveW: z.number().min(0).default(5).describe('smart-plug: the tool counts as busy while it draws more than this many watts (its idle draw stays below).'),
    readMeterTimeoutMs: z.number().int().min(50).max(10_000).default(1000).describe('At a session start or end, milliseconds to wait for a fresh telemetry message asked for by a rebirth command.'),
    ...meterPhysicsKeys('the instrument'),
  })
  .describe('A networked instrument on the embedded MQTT broker (needs the mqtt section).');

export type MqttInstrumentConfig = z.output<typeof mqttInstrumentSchema>;
