/**
 * A print job's accounting, pure: what the job is, how far it got and the filament it used.
 * In print-host mode the filament comes from each command the printer acknowledged; in SD mode
 * from the extruder positions the printer reports (M114), one segment between E resets at a time.
 * A running job is checkpointed every few seconds; one the gateway did not live to end is ended
 * at the next start with its last checkpoint.
 */
import { consumedMm, gramsOf, initialExtrusion, type ExtrusionState, type FilamentSpec } from './filament.js';

export type JobOutcome = 'finished' | 'cancelled' | 'interrupted' | 'failed';

export interface JobInfo {
  id: string;
  mode: 'host' | 'sd';
  file: string;
  startedAt: string;
  state: 'printing' | 'paused' | JobOutcome;
  /** 0..1 */
  progress: number;
  filamentMm: number;
  filamentG: number;
}

/** What `printer.job-ended` says. */
export interface JobEnded {
  jobId: string;
  mode: 'host' | 'sd';
  file: string;
  outcome: JobOutcome;
  reason: string;
  filamentMm: number;
  filamentG: number;
  /** SD mode, where the firmware keeps a print counter: what it says the job used (a cross-check). */
  printCounterMm?: number;
  durationS: number;
  /** A job ended after a crash: when its last checkpoint was taken (null: none was). */
  lastCheckpointAt?: string | null;
}

/** What `printer.job-started` says. */
export interface JobStarted {
  jobId: string;
  mode: 'host' | 'sd';
  file: string;
  lines?: number;
}

/** A running job's progress, saved every few seconds so that a crash loses at most one interval of it. */
export interface JobCheckpoint {
  filamentMm: number;
  filamentG: number;
  progress: number;
  durationS: number;
}

/** SD mode: the extruder positions read so far, as closed segments and the open one. */
export interface ExtruderReadings {
  segmentStartE: number;
  /** The open segment's high-water mark; NaN before the first reading. */
  highE: number;
  /** Filament of the closed segments, mm. */
  doneMm: number;
}

export interface SdProgress {
  readings: ExtruderReadings;
  byte: number;
  total: number;
  /** The firmware's print counter (M78) at the start, for a cross-check where the counter is enabled. */
  counterStartMm: number | null;
}

export interface ActiveJob {
  id: string;
  mode: 'host' | 'sd';
  file: string;
  startedAt: Date;
  startedMono: number;
  paused: boolean;
  /** Host mode: lines still to send. */
  lines: string[];
  next: number;
  acked: number;
  /** Host mode: filament from the commands the printer acknowledged. */
  extrusion: ExtrusionState;
  sd: SdProgress | null;
  cancelling: boolean;
}

export function newJob(start: Pick<ActiveJob, 'id' | 'mode' | 'file' | 'lines' | 'startedAt' | 'startedMono'>, positioningSetsE: boolean): ActiveJob {
  return {
    ...start,
    paused: false,
    next: 0,
    acked: 0,
    extrusion: initialExtrusion(positioningSetsE),
    sd: start.mode === 'sd' ? { readings: { segmentStartE: NaN, highE: NaN, doneMm: 0 }, byte: 0, total: 0, counterStartMm: null } : null,
    cancelling: false,
  };
}

/** Filament per extruder, mm. SD mode reads one E position (the active extruder's): it counts as extruder 0. */
export function jobFilamentByExtruderMm(job: ActiveJob): number[] {
  const host = consumedMm(job.extrusion);
  if (!job.sd) return host;
  const r = job.sd.readings;
  return addPerExtruder(host, [r.doneMm + (Number.isNaN(r.highE) ? 0 : r.highE - r.segmentStartE)]);
}

export function jobInfo(job: ActiveJob, state: JobInfo['state'], spec: FilamentSpec): JobInfo {
  const mm = jobFilamentByExtruderMm(job).reduce((a, b) => a + b, 0);
  const progress = job.mode === 'host' ? (job.lines.length ? job.acked / job.lines.length : 0) : job.sd!.total ? job.sd!.byte / job.sd!.total : 0;
  return {
    id: job.id,
    mode: job.mode,
    file: job.file,
    startedAt: job.startedAt.toISOString(),
    state,
    progress: Math.min(1, progress),
    filamentMm: round(mm, 3),
    filamentG: round(gramsOf(mm, spec), 3),
  };
}

export function jobCheckpoint(job: ActiveJob, spec: FilamentSpec, nowMono: number): JobCheckpoint {
  const { filamentMm, filamentG, progress } = jobInfo(job, 'printing', spec);
  return { filamentMm, filamentG, progress, durationS: jobDurationS(job, nowMono) };
}

/**
 * After a crash or a power cut: each job started and never ended is ended `interrupted` with
 * the filament and duration of its last checkpoint, or nothing used when it had none.
 */
export function interruptedJobs(open: readonly { started: JobStarted; checkpoint: { at: string; data: JobCheckpoint } | null }[]): JobEnded[] {
  return open.map(({ started, checkpoint: cp }) => ({
    jobId: started.jobId,
    mode: started.mode,
    file: started.file,
    outcome: 'interrupted',
    reason: 'the gateway stopped without ending it (a crash or a power cut)',
    filamentMm: cp?.data.filamentMm ?? 0,
    filamentG: cp?.data.filamentG ?? 0,
    durationS: cp?.data.durationS ?? 0,
    lastCheckpointAt: cp?.at ?? null,
  }));
}

/**
 * SD mode: E from M114. A rise above the segment's high-water mark is consumption; a small
 * drop is a retraction; a large drop is a reset (G92), which closes the segment. Segments
 * start at E = 0: slicers' start G-code and layer changes reset with G92 E0, so what was
 * extruded before the first reading of a segment (a purge line) still counts.
 */
export function afterExtruderReading(r: ExtruderReadings, e: number, maxRetractionMm: number): ExtruderReadings {
  if (Number.isNaN(r.highE)) return { segmentStartE: 0, highE: Math.max(0, e), doneMm: r.doneMm };
  if (e < r.highE - maxRetractionMm) return { segmentStartE: 0, highE: Math.max(0, e), doneMm: r.doneMm + r.highE - r.segmentStartE };
  return e > r.highE ? { ...r, highE: e } : r;
}

/**
 * What the firmware's print counter says the job used, where it was read at the start and now.
 * It counts every forward E move, un-retractions included, so it reads higher than the
 * filament used: a cross-check, not the metered figure.
 */
export function printCounterUsedMm(job: ActiveJob, counterNowMm: number | null): number | undefined {
  const start = job.sd?.counterStartMm ?? null;
  return start !== null && counterNowMm !== null ? counterNowMm - start : undefined;
}

/** Seconds from the start to `nowMono` (monotonic, like `startedMono`), to a tenth. */
export function jobDurationS(job: ActiveJob, nowMono: number): number {
  return round((nowMono - job.startedMono) / 1000, 1);
}

export function addPerExtruder(a: readonly number[], b: readonly number[]): number[] {
  return Array.from({ length: Math.max(a.length, b.length) }, (_, i) => (a[i] ?? 0) + (b[i] ?? 0));
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
