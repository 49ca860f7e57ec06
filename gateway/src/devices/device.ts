/** What every device adapter offers the composition root and the API. */
export type Availability = 'online' | 'offline';

export interface DeviceHealth {
  id: string;
  kind: string;
  name: string;
  state: Availability;
  /** Wall-clock time of the last valid frame or message from the device, ISO 8601. */
  lastSeen: string | null;
  /** Since when the device has been in `state`. */
  since: string;
  /** Kind-specific detail: firmware, counters, last readings. */
  detail: Record<string, unknown>;
}

export interface Device {
  readonly id: string;
  readonly kind: string;
  start(): void;
  stop(): Promise<void>;
  health(): DeviceHealth;
}
