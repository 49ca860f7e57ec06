/**
 * What Moonraker reports about a Klipper printer, as plain data: the printer objects the gateway
 * subscribes to (Moonraker's docs/printer_objects.md: print_stats, extruder, heater_bed,
 * webhooks, display_status, virtual_sdcard), merged update by update, and what their states
 * mean for a job. No I/O.
 */
import type { JobOutcome } from '../printer/job.js';
import type { Temperatures } from '../printer/responses.js';

/** The subscription: each object with the fields the gateway reads. */
export const SUBSCRIPTION = {
  print_stats: ['state', 'filename', 'filament_used', 'message', 'total_duration', 'print_duration'],
  extruder: ['temperature', 'target'],
  heater_bed: ['temperature', 'target'],
  webhooks: ['state', 'state_message'],
  display_status: ['progress', 'message'],
  virtual_sdcard: ['progress', 'file_position', 'file_size'],
} as const;

export type HostObjects = { -readonly [K in keyof typeof SUBSCRIPTION]?: Record<string, unknown> };

/** Merges a `notify_status_update` (only what changed, object by object) into the status held. */
export function mergeStatus(held: HostObjects, changes: unknown): HostObjects {
  if (changes === null || typeof changes !== 'object') return held;
  const next: HostObjects = { ...held };
  for (const [name, fields] of Object.entries(changes as Record<string, unknown>)) {
    if (!(name in SUBSCRIPTION) || fields === null || typeof fields !== 'object') continue;
    const key = name as keyof typeof SUBSCRIPTION;
    next[key] = { ...held[key], ...(fields as Record<string, unknown>) };
  }
  return next;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** print_stats.state: standby, printing, paused, complete, error, cancelled. */
export function printState(s: HostObjects): string | undefined {
  return str(s.print_stats?.state);
}

export function isPrinting(s: HostObjects): boolean {
  const state = printState(s);
  return state === 'printing' || state === 'paused';
}

export const fileName = (s: HostObjects): string => str(s.print_stats?.filename) ?? '';
/** Filament Klipper counts for the job, mm (G-code E, net of retractions). */
export const filamentUsedMm = (s: HostObjects): number | undefined => num(s.print_stats?.filament_used);
/** display_status.progress (M73, or the file position), 0..1. */
export const progressOf = (s: HostObjects): number | undefined => num(s.display_status?.progress) ?? num(s.virtual_sdcard?.progress);

/** webhooks.state: startup, ready, shutdown, error; the message in Klipper's own words. */
export function klippyOf(s: HostObjects): { state: string | undefined; message: string } {
  return { state: str(s.webhooks?.state), message: (str(s.webhooks?.state_message) ?? '').trim() };
}

export function temperaturesOf(s: HostObjects): Temperatures | null {
  const heater = (o: Record<string, unknown> | undefined) => {
    const actual = num(o?.temperature);
    return actual === undefined ? undefined : { actual, target: num(o?.target) ?? 0 };
  };
  const hotend = heater(s.extruder);
  const bed = heater(s.heater_bed);
  if (!hotend && !bed) return null;
  return { ...(hotend && { hotend }), ...(bed && { bed }), tools: hotend ? [hotend] : [] };
}

/** How a job ended, by the print_stats state it left printing for. */
export function outcomeOfPrintState(state: string | undefined): JobOutcome {
  switch (state) {
    case 'complete':
      return 'finished';
    case 'error':
      return 'failed';
    default:
      // cancelled, or standby (SDCARD_RESET_FILE while printing)
      return 'cancelled';
  }
}

/** How a job ended, by its Moonraker history status (docs/external_api/history.md); null: still in progress. */
export function outcomeOfHistory(status: string): JobOutcome | null {
  switch (status) {
    case 'in_progress':
      return null;
    case 'completed':
      return 'finished';
    case 'cancelled':
      return 'cancelled';
    case 'error':
    case 'klippy_shutdown':
      return 'failed';
    default:
      // klippy_disconnect, interrupted, and any status a later Moonraker adds
      return 'interrupted';
  }
}

/** A Moonraker history entry, the fields the gateway reads. */
export interface HistoryJob {
  job_id: string;
  filename: string;
  status: string;
  filament_used: number;
  total_duration: number;
  start_time: number;
  end_time: number | null;
}

export function historyJobs(result: unknown): HistoryJob[] {
  const jobs = (result as { jobs?: unknown } | null)?.jobs;
  if (!Array.isArray(jobs)) return [];
  return jobs.filter((j): j is HistoryJob => j !== null && typeof j === 'object' && typeof (j as HistoryJob).job_id === 'string' && typeof (j as HistoryJob).status === 'string');
}
