/**
 * What differs between networked instruments, as definition objects rather than driver
 * subclasses: a new instrument on the lab's MQTT topics is a new entry here.
 */
import type { Telemetry } from '../../mqtt/schemas.js';

export interface InstrumentDefinition {
  readonly model: string;
  readonly description: string;
  /** Whether the tool is working, from a telemetry message and the device's config. */
  busy(t: Telemetry, cfg: { busyAboveW: number }): boolean;
  /** Whether the firmware reports faults (a plug does not). */
  readonly reportsFaults: boolean;
  /** Whether it can show a result at the tool (LEDs, buzzer, display) by the indicate command. */
  readonly indicates: boolean;
}

export const INSTRUMENTS = {
  'mosquito-rig': {
    model: 'mosquito-rig',
    description: 'Mosquito sensor rig: ESP32 with an energy meter, a busy input, fault detection and a relay or enable line',
    busy: (t) => t.busy,
    reportsFaults: true,
    indicates: true,
  },
  'smart-plug': {
    model: 'smart-plug',
    description: 'metered smart plug (Tasmota-like): power and energy, a relay; busy while the power is above busyAboveW',
    // A plug knows no busy input: the load drawing power is the tool working.
    busy: (t, cfg) => (t.powerW ?? 0) > cfg.busyAboveW,
    reportsFaults: false,
    indicates: false,
  },
} as const satisfies Record<string, InstrumentDefinition>;

export type InstrumentModel = keyof typeof INSTRUMENTS;
export const INSTRUMENT_MODELS = Object.keys(INSTRUMENTS) as [InstrumentModel, ...InstrumentModel[]];
