/** The state a printer is in, pure: from its link, its handshake, a fault, the job and its heaters. */
import type { Temperatures } from './responses.js';

export type PrinterState = 'offline' | 'connecting' | 'idle' | 'heating' | 'printing' | 'paused' | 'error';

export interface PrinterFacts {
  connected: boolean;
  /** The handshake is done: capabilities known, polling running. */
  ready: boolean;
  faulted: boolean;
  job: { paused: boolean } | null;
  temps: Temperatures | null;
}

export function printerStateOf(f: PrinterFacts): PrinterState {
  if (!f.connected) return 'offline';
  if (!f.ready) return 'connecting';
  if (f.faulted) return 'error';
  if (f.job) return f.job.paused ? 'paused' : 'printing';
  return isHeating(f.temps) ? 'heating' : 'idle';
}

function isHeating(t: Temperatures | null): boolean {
  if (!t) return false;
  return [t.hotend, t.bed].some((h) => h !== undefined && h.target > 0 && h.actual < h.target - 2);
}
