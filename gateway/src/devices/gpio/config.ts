/** Config of a tool switch on the Pi's own GPIO pins (relay, feedback contact, LEDs, buzzer). */
import { z } from 'zod';
import { deviceId } from '../../config/common.js';

const line = z.number().int().min(0).max(63).describe('BCM GPIO number (GPIO17 is header pin 11), an offset on the GPIO chip.');

const pinObject = z.strictObject({
  line,
  activeLow: z.boolean().default(false).describe('The pin is active when low (most relay boards with opto-couplers, LEDs wired to 3.3 V).'),
});

/** `17` is short for `{ line: 17 }`. */
const pin = z.union([line.transform((l) => ({ line: l, activeLow: false })), pinObject]).describe('A GPIO line: a BCM number, or { line, activeLow }.');

export const PIN_ROLES = ['relay', 'feedback', 'ledGreen', 'ledRed', 'buzzer'] as const;
export type PinRole = (typeof PIN_ROLES)[number];

const pins = z
  .strictObject({
    relay: pin.describe('Output driving the relay (or contactor) that powers the tool.'),
    feedback: pin.optional().describe('Input from a contact that closes when the relay really closed; without one the command counts as confirmed.'),
    ledGreen: pin.optional().describe('Green LED: access granted, information.'),
    ledRed: pin.optional().describe('Red LED: denied, warning, error.'),
    buzzer: pin.optional().describe('Buzzer (active, on/off).'),
  })
  .superRefine((p, ctx) => {
    const used = new Map<number, PinRole>();
    for (const role of PIN_ROLES) {
      const l = p[role]?.line;
      if (l === undefined) continue;
      const other = used.get(l);
      if (other !== undefined) ctx.addIssue({ code: 'custom', path: [role], message: `line ${l} is already used by pins.${other}; each pin needs its own line` });
      else used.set(l, role);
    }
  })
  .describe('GPIO lines by role; only the relay is required.');

export const gpioSwitchSchema = z.strictObject({
  id: deviceId,
  kind: z.literal('gpio').describe("A tool switch on the Pi's own GPIO pins: a relay, an optional feedback contact, LEDs and a buzzer."),
  name: z.string().min(1).optional().describe('Display name, e.g. "Laser cutter relay"; default: the id.'),
  simulated: z.boolean().default(false).describe('In-memory pins instead of the real ones, for a machine without GPIO (development, demos); without it such a machine refuses to start.'),
  chip: z
    .string()
    .min(1)
    .optional()
    .describe('Label of the GPIO chip carrying the lines (see /sys/class/gpio/gpiochip*/label); by default the Pi header chip (pinctrl-rp1 on a Pi 5, pinctrl-bcm2711 on a Pi 4, pinctrl-bcm2835). Its base (512 and up on recent kernels) is added to the line numbers for the sysfs interface.'),
  pins,
});

export type GpioSwitchConfig = z.output<typeof gpioSwitchSchema>;
export type PinConfig = z.output<typeof pinObject>;
