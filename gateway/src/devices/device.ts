/** What every device adapter offers the composition root and the API. */

/**
 * `online`: reachable and working; `unresponsive`: reachable but saying nothing (it comes back,
 * or it is given up on and goes offline); `fault`: reachable but stopped by a fault until that is
 * cleared; `offline`: not reachable.
 */
export type DeviceState = 'online' | 'unresponsive' | 'fault' | 'offline';

export interface DeviceHealth {
  id: string;
  kind: string;
  name: string;
  state: DeviceState;
  /** Why it is unresponsive or in fault, for a person (a printer's fault in the firmware's words). */
  reason?: string;
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

/** What stops a reachable device working; offline comes before it. */
export interface DeviceProblem {
  state: 'unresponsive' | 'fault';
  reason: string;
}

/** The device's serious faults (errors, not warnings) as its problem, if it has any. */
export function faultProblem(texts: readonly string[]): DeviceProblem | null {
  return texts.length ? { state: 'fault', reason: texts.join('; ') } : null;
}

export function deviceState(online: boolean, problem: DeviceProblem | null | undefined): DeviceState {
  return online ? (problem?.state ?? 'online') : 'offline';
}

/** The health record every device reports; `detail` is the kind's own. */
export function deviceHealth(
  cfg: { id: string; name?: string | undefined; serial: { path: string } },
  kind: string,
  link: { online: boolean; lastSeen: Date | null; since: Date; problem?: DeviceProblem | null },
  detail: Record<string, unknown>,
): DeviceHealth {
  const problem = link.online ? link.problem : null;
  return {
    id: cfg.id,
    kind,
    name: cfg.name ?? cfg.id,
    state: deviceState(link.online, problem),
    ...(problem && { reason: problem.reason }),
    lastSeen: link.lastSeen?.toISOString() ?? null,
    since: link.since.toISOString(),
    detail: { target: cfg.serial.path, ...detail },
  };
}
