/**
 * What a shared tool needs from the devices around it, whatever they are: something that
 * reads badges (a metering node's reader, a serial RFID reader, a networked reader over
 * MQTT) and something that switches the tool and gives feedback (a metering node's relay,
 * Pi GPIO pins). Sessions depend on these two roles, not on device classes.
 */
import type { Device } from './device.js';

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

export const isBadgeReader = (d: Device): d is BadgeReader => (d as Partial<BadgeReader>).readsBadges === true;
export const isToolSwitch = (d: Device): d is ToolSwitch => (d as Partial<ToolSwitch>).switchesTools === true;
