/** Config building blocks shared by the main schema and the device kinds' own schemas. */
import { z } from 'zod';
import { MATERIAL_DENSITY } from '../devices/printer/filament.js';

export const hostPort = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:7101');

/** A `host:port` text as its two parts (the port after the last colon). */
export function splitHostPort(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i), port: Number(text.slice(i + 1)) };
}

export const backoff = z
  .strictObject({
    initialMs: z.number().int().min(10).default(500).describe('First reconnect delay, in milliseconds.'),
    maxMs: z.number().int().min(100).default(30_000).describe('Reconnect delays double up to this cap, in milliseconds.'),
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
    baudRate: z.number().int().positive().default(115_200).describe('Serial speed in baud (a TCP bridge sets its own).'),
    reconnect: backoff,
  })
  .describe('How to reach the device over serial.');

export const deviceId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes, starting with a letter or digit')
  .describe('Stable device id, used in topics, the journal and the API.');

/** One 16 A circuit at 230 V: what a node's relay or a smart plug switches. */
export const DEFAULT_MAX_POWER_W = 3680;

/** The physics a metering device's counters are checked against (devices/metering-node/meter.ts); `what` names the device in the texts. */
export function meterPhysicsKeys(what: string) {
  return {
    maxPowerW: z
      .number()
      .positive()
      .default(DEFAULT_MAX_POWER_W)
      .describe(`The most power the tool behind ${what} can draw, in watts (default: one 16 A circuit at 230 V). Energy counted faster than this is an implausible reading: set aside, never billed.`),
    maxClockRate: z
      .number()
      .min(1)
      .max(1000)
      .default(1.05)
      .describe(`How many seconds ${what}'s time counters may gain per second of the gateway's clock (its own clock may run a few percent fast); its energy is bounded over the same time. A simulator running faster than life needs its timeScale, or more, here.`),
  };
}

/** Control characters (C0, DEL, C1) and the bidirectional marks, overrides and isolates, which make a text show as something else. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const UNSAFE_IN_LINE = /[\t\n]/u;

/**
 * Text a person writes (a name, a reason, a note): at most `max` characters, and none of the
 * characters that would rewrite a terminal or reorder what a reader sees; `lines` allows line
 * breaks and tabs (a reason or a note).
 */
export const freeText = (max: number, opts: { lines?: boolean } = {}) =>
  z
    .string()
    .max(max, `at most ${max} characters`)
    .refine((s) => !UNSAFE.test(s) && (opts.lines || !UNSAFE_IN_LINE.test(s)), `control characters and bidirectional overrides are not allowed${opts.lines ? '' : ', nor line breaks'}`);

const KNOWN_MATERIALS = Object.keys(MATERIAL_DENSITY);
const KNOWN_DENSITIES = Object.entries(MATERIAL_DENSITY).map(([material, density]) => `${material} ${density}`).join(', ');

/** A printer's filament, whoever drives the printer. */
export const filamentSchema = z
  .strictObject({
    diameterMm: z.number().positive().max(5).default(1.75).describe('Filament diameter in mm.'),
    material: z.string().min(1).default('PLA').describe(`Material name, also the one billing prices. Known densities in g/cm³: ${KNOWN_DENSITIES}; another material needs densityGPerCm3.`),
    densityGPerCm3: z.number().positive().max(5).optional().describe("Density in g/cm³; overrides the material's known density."),
  })
  .refine((f) => f.densityGPerCm3 !== undefined || KNOWN_MATERIALS.includes(f.material.toUpperCase()), {
    message: `unknown material density: give densityGPerCm3, or use one of ${KNOWN_MATERIALS.join(', ')}`,
  })
  .default({ diameterMm: 1.75, material: 'PLA' })
  .describe('The filament loaded, which turns extruded length into grams: length × π × (diameter/2)² × density.');
