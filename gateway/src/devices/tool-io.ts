/**
 * What a shared tool needs from the devices around it, whatever they are: something that
 * reads badges (a metering node's reader, a serial RFID reader, a networked reader over
 * MQTT), something that switches the tool and gives feedback (a metering node's relay,
 * Pi GPIO pins, a networked instrument's relay by command) and, optionally, something that
 * meters it and says whether it is busy (a metering node, a networked instrument or smart
 * plug). Sessions depend on these roles, not on device classes.
 */
import type { Device } from './device.js';
import type { Material } from './printer/job.js';
import type { PrinterState } from './printer/printer-state.js';

export type Indication = 'off' | 'granted' | 'denied' | 'warning' | 'error' | 'info';

/** Why the tool is switched, as the metering-node protocol names it (RELAY_SET.reason). */
export type SwitchReason = 'unspecified' | 'session-start' | 'session-end' | 'idle-timeout' | 'maintainer' | 'fault' | 'gateway-shutdown' | 'max-duration';

export interface BadgeRead {
  /** Uppercase hex. */
  uid: string;
  /** Which reader, for the log and the journal. */
  reader: string;
}

/** The relay as commanded and as sensed (null: this switch has no feedback contact). */
export interface RelayState {
  requested: boolean;
  sensed: boolean | null;
}

/** A device that reads badges: emits `badge` once per tap (readers that repeat while a card is held are debounced by their adapter). */
export interface BadgeReader extends Device {
  readonly readsBadges: true;
  on(event: 'badge', listener: (b: BadgeRead) => void): unknown;
  off(event: 'badge', listener: (b: BadgeRead) => void): unknown;
}

/**
 * A device that switches a tool. `relay` events report the state after each command and on
 * any change the device senses; a switch without a feedback contact reports `sensed: null`
 * and the commanded state counts as confirmed.
 */
export interface ToolSwitch extends Device {
  readonly switchesTools: true;
  /** Whether relayState says what the relay really is (a node reports it after connecting; GPIO knows at start). */
  readonly relayKnown: boolean;
  on(event: 'relay', listener: (r: RelayState) => void): unknown;
  off(event: 'relay', listener: (r: RelayState) => void): unknown;
  readonly relayState: RelayState;
  setRelay(on: boolean, reason: SwitchReason): Promise<void>;
  indicate(pattern: Indication, durationMs: number, text: string): Promise<void>;
}

/** Totals of a tool meter over every boot of the device, from its own cumulative counters. */
export interface MeterTotals {
  /** Seconds the tool was busy (working). */
  activeS: number;
  energyMwh: number;
}

/** A fault the meter reports; a severe one ends the running session. */
export interface ToolFault {
  code: string;
  active: boolean;
  severe: boolean;
  text: string;
}

/**
 * A device that meters a tool. Its counters are the device's own and cumulative, so they
 * keep counting while the gateway is away (a session measures from its start's totals to
 * its end's). `busy` is emitted on every report of the busy state (repeats included),
 * `fault` when a fault is raised or cleared.
 */
export interface ToolMeter extends Device {
  readonly meterTotals: MeterTotals;
  readonly isBusy: boolean;
  /** A fresh reading: resolves when it has arrived, after a short timeout, or at once when the device is offline (the last totals are then what there is). */
  readMeter(): Promise<void>;
  on(event: 'busy', listener: (busy: boolean) => void): unknown;
  on(event: 'fault', listener: (f: ToolFault) => void): unknown;
  off(event: 'busy', listener: (busy: boolean) => void): unknown;
  off(event: 'fault', listener: (f: ToolFault) => void): unknown;
}

/**
 * A 3D printer as sessions see it, whoever drives it (the gateway over serial, or a print host
 * such as Moonraker on the network): its state (`error` ends the session as a fault), whether it
 * is busy, and the filament of its jobs. `state` is emitted on every change of state.
 */
export interface ToolPrinter extends Device {
  readonly state: PrinterState;
  /** A job is running or paused, or it is heating: sessions never cut power then. */
  readonly busy: boolean;
  /** A running count of filament metered since the gateway started (ended jobs and the current one), per extruder, mm. */
  readonly filamentCountersMm: number[];
  /** Where the material counted from now on starts: the running job, or the next one. */
  readonly jobMark: number;
  /** The material of the jobs from a mark on (a session's), the running one as it stands; null: no job. */
  materialSince(mark: number): Material | null;
  /** Grams for a length of this printer's filament. */
  gramsOf(mm: number): number;
  on(event: 'state', listener: (s: PrinterState) => void): unknown;
  off(event: 'state', listener: (s: PrinterState) => void): unknown;
}

export const isBadgeReader = (d: Device): d is BadgeReader => (d as Partial<BadgeReader>).readsBadges === true;
export const isToolSwitch = (d: Device): d is ToolSwitch => (d as Partial<ToolSwitch>).switchesTools === true;
