/**
 * What a session uses, pure: its duration, busy time, energy, filament and technician help,
 * measured from the readings at its start. Times are monotonic milliseconds (`performance.now()`):
 * the wall clock of a Pi may jump when NTP syncs.
 */
import type { SessionRecord } from '../billing/billing.js';
import type { Material } from '../devices/printer/job.js';

/** Absolute meter readings a session's usage is measured from. */
export interface Meters {
  energyMwh: number;
  activeS: number;
}

export interface OpenSession {
  id: string;
  affiliateId: string;
  useType: string;
  startedAt: Date;
  clockSyncedAtStart: boolean | null;
  /** Monotonic, for the duration. */
  startedMono: number;
  meters: Meters;
  filamentAtStartMm: number[];
  /** The printer's job mark at the start: the jobs whose material the session shares (see Printer.jobMark). */
  printerJobMark?: number;
  /** Busy time measured here, for tools without a meter's counters. */
  activeMs: number;
  busySinceMono: number | null;
  stoppedBy: string | null;
  /** Technician help: time so far, and who is helping since when (monotonic). */
  technicianMs: number;
  technician: { affiliateId: string; sinceMono: number } | null;
  technicians: string[];
}

/** A session's usage so far or at its end: what billing charges, and what the journal keeps beside it. */
export interface SessionUsage extends SessionRecord {
  /** Whether the wall clock was synchronised (NTP) at the start and the end; null: unknown. */
  clockSynced: { start: boolean | null; end: boolean | null };
  energyWh: number;
  filament: { extruder: number; mm: number; g: number }[];
  filamentMm: number;
  /** Technician help during the session, in started minutes, and who helped. */
  technicianMin: number;
  technicians: string[];
  /** Where the filament figure comes from (the session's print jobs), its uncertainty also in grams of the printer's filament. */
  material?: SessionMaterial;
}

/** A session's material: its jobs' source, with the uncertainty in grams too (null: unknown). */
export interface SessionMaterial extends Material {
  uncertaintyG: number | null;
}

/** What an open session saves every few seconds, to be closed with after a crash. */
export interface Checkpoint {
  usage: SessionUsage;
  meters: Meters;
}

/** The tool's counters now. */
export interface Readings {
  meters: Meters;
  /** The meter's active-seconds counter is the truth where there is one: it keeps counting while the gateway is down. */
  metered: boolean;
  /**
   * The printer's filament counters per extruder (mm), the grams of a length, and where the
   * material of the session's jobs comes from (null: no job); null: no printer.
   */
  printer: { filamentMm: readonly number[]; gramsOf(mm: number): number; material?: Material | null } | null;
}

export function newSession(
  start: Pick<OpenSession, 'id' | 'affiliateId' | 'useType' | 'startedAt' | 'clockSyncedAtStart' | 'startedMono' | 'meters' | 'filamentAtStartMm' | 'busySinceMono' | 'printerJobMark'>,
): OpenSession {
  return { ...start, activeMs: 0, stoppedBy: null, technicianMs: 0, technician: null, technicians: [] };
}

/** The tool became busy or idle at `now`: busy time is counted from the one to the other. */
export function withBusy(open: OpenSession, busy: boolean, now: number): OpenSession {
  if (busy) return { ...open, busySinceMono: now };
  if (open.busySinceMono === null) return open;
  return { ...open, activeMs: open.activeMs + now - open.busySinceMono, busySinceMono: null };
}

/** A technician badged at `now`: their help starts, or stops when they were already helping (another technician takes over). */
export function withTechnician(open: OpenSession, affiliateId: string, now: number): OpenSession {
  const current = open.technician;
  return {
    ...open,
    technicianMs: current ? open.technicianMs + now - current.sinceMono : open.technicianMs,
    technician: current?.affiliateId === affiliateId ? null : { affiliateId, sinceMono: now },
    technicians: open.technicians.includes(affiliateId) ? open.technicians : [...open.technicians, affiliateId],
  };
}

/** The usage at `now`; `end` when the session ends then, with whether the clock was synchronised. */
export function usageOf(open: OpenSession, toolId: string, readings: Readings, end: { at: Date; clockSynced: boolean | null } | null, now: number): SessionUsage {
  const { meters, printer } = readings;
  const filament = (printer?.filamentMm ?? []).map((mm, extruder) => {
    const used = mm - (open.filamentAtStartMm[extruder] ?? 0);
    return { extruder, mm: round3(used), g: round3(printer!.gramsOf(used)) };
  });
  const activeMs = open.activeMs + (open.busySinceMono !== null ? now - open.busySinceMono : 0);
  const technicianMs = open.technicianMs + (open.technician ? now - open.technician.sinceMono : 0);
  return {
    sessionId: open.id,
    toolId,
    affiliateId: open.affiliateId,
    useType: open.useType,
    startedAt: open.startedAt.toISOString(),
    endedAt: end?.at.toISOString() ?? null,
    clockSynced: { start: open.clockSyncedAtStart, end: end ? end.clockSynced : null },
    durationS: Math.round((now - open.startedMono) / 100) / 10,
    activeS: readings.metered ? meters.activeS - open.meters.activeS : Math.round(activeMs / 1000),
    energyWh: (meters.energyMwh - open.meters.energyMwh) / 1000,
    filament,
    filamentMm: round3(filament.reduce((a, f) => a + f.mm, 0)),
    filamentG: round3(filament.reduce((a, f) => a + f.g, 0)),
    ...(printer?.material && { material: { ...printer.material, uncertaintyG: printer.material.uncertaintyMm === null ? null : round3(printer.gramsOf(printer.material.uncertaintyMm)) } }),
    technicianMin: Math.ceil(technicianMs / 60_000),
    technicians: [...open.technicians],
  };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
