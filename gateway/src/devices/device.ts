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

/** The health record every device reports; `detail` is the kind's own. */
export function deviceHealth(
  cfg: { id: string; name?: string | undefined; serial: { path: string } },
  kind: string,
  link: { online: boolean; lastSeen: Date | null; since: Date },
  detail: Record<string, unknown>,
): DeviceHealth {
  return {
    id: cfg.id,
    kind,
    name: cfg.name ?? cfg.id,
    state: link.online ? 'online' : 'offline',
    lastSeen: link.lastSeen?.toISOString() ?? null,
    since: link.since.toISOString(),
    detail: { target: cfg.serial.path, ...detail },
  };
}
