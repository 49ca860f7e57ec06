/**
 * A print job's accounting, pure: what the job is, how far it got and the filament it used, and
 * where that figure comes from (`material.source`):
 * - `file`: the gateway holds the G-code. Print-host mode counts each command the printer
 *   acknowledged; SD mode runs the filament engine over the file up to the byte the printer
 *   reports reading. Exact.
 * - `printer-counter`: SD mode, file unknown: the difference of the firmware's print counter
 *   (M78) since the job started. Marlin adds every E move's signed length, so the counter reads
 *   short by the retraction outstanding when it is read, and it has 10 mm steps.
 * - `position-estimate`: neither: E positions polled (M114), one segment between E resets at a
 *   time. It cannot tell a `G92 E0` followed by a little extrusion from a retraction, and misses
 *   what happens between polls: flagged, never silently billed.
 * A running job is checkpointed every few seconds; one the gateway did not live to end is ended
 * at the next start with its last checkpoint.
 */
import { consumedAtByte, type FileProfile } from './file-meter.js';
import { consumedMm, gramsOf, initialExtrusion, type ExtrusionState, type FilamentSpec } from './filament.js';

export type MaterialSource = 'file' | 'printer-counter' | 'position-estimate';

/** Where a job's (or a session's) filament figure comes from, how far off it may be, and why a person should look at it. */
export interface Material {
  source: MaterialSource;
  /** How far the figure may be off, ± mm; null: unknown. */
  uncertaintyMm: number | null;
  /** Why a custodian should confirm or correct the figure; null: nothing to check. */
  flagged: string | null;
}

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
  material: Material;
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
  /** SD mode: the byte the printer had read when the job ended, of the file's size, and whether the firmware said it was done. */
  sd?: { byte: number; total: number; done: boolean };
  /** SD mode: what the firmware's print counter says the job used; null: not answered at the start or the end. */
  printCounterMm?: number | null;
  material?: Material;
  durationS: number;
  /** A job ended after a crash: when its last checkpoint was taken (null: none was). */
  lastCheckpointAt?: string | null;
}

/** An SD job that ended metered from the printer's counter or an estimate, metered again from its file given since (`printer.job-metered`). */
export interface JobMetered {
  jobId: string;
  file: string;
  /** When the job started and ended (the journal's times). */
  startedAt: string;
  endedAt: string;
  /** The figure it ended with, and the file's up to the byte the printer read. */
  before: { filamentMm: number; filamentG: number; material: Material | null };
  filamentMm: number;
  filamentG: number;
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
  material?: Material;
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
  /** The file, when the gateway holds it. */
  profile: FileProfile | null;
  /** The firmware's print counter (M78) at the start and last read; null: not answered. */
  counterStartMm: number | null;
  counterNowMm: number | null;
  /** The counter moves while printing (Marlin); Prusa-Firmware saves it when a print ends. */
  counterLive: boolean;
  /** The last counter reading came after the print ended. */
  counterFinal: boolean;
  /** Already printing when the gateway connected: a counter read now misses what came before. */
  startedUnseen: boolean;
  /** The firmware said `Done printing file`. */
  done: boolean;
  /** Recent `SD printing byte` reports (monotonic ms, byte), for the printing speed. */
  reports: { mono: number; byte: number }[];
  /**
   * Ended without the firmware saying it was done (stopped, card lost, halted): the bytes it may
   * have read after its last report, at its recent speed; 0 otherwise.
   */
  gapBytes: number;
}

/** How SD material is judged: the counter's steps and the largest retraction, and the margin by which file and counter may differ. */
export interface MaterialPolicy {
  counterStepMm: number;
  maxRetractionMm: number;
  crossCheckMarginMm: number;
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
    sd:
      start.mode === 'sd'
        ? { readings: { segmentStartE: NaN, highE: NaN, doneMm: 0 }, byte: 0, total: 0, profile: null, counterStartMm: null, counterNowMm: null, counterLive: true, counterFinal: false, startedUnseen: false, done: false, reports: [], gapBytes: 0 }
        : null,
    cancelling: false,
  };
}

/**
 * Filament per extruder, mm, and where it comes from. Commands the gateway sent itself (a cancel
 * script) are counted from the commands. SD mode without the file reads one E position or one
 * counter (the active extruder's): it counts as extruder 0.
 */
export function jobMaterial(job: ActiveJob, policy: MaterialPolicy): { mm: number[]; material: Material } {
  const host = consumedMm(job.extrusion);
  const s = job.sd;
  if (!s) return { mm: host, material: { source: 'file', uncertaintyMm: 0, flagged: null } };
  const counter = counterUsedMm(s);
  const counterUsable = counter !== null && (s.counterLive || s.counterFinal);
  if (s.profile) {
    const mm = addPerExtruder(host, consumedAtByte(s.profile, s.done ? s.total : s.byte));
    const fromFile = mm.reduce((a, b) => a + b, 0);
    // The counter, where it covers the whole job, must agree with the file within its bias.
    const off = counterUsable && s.counterFinal && !s.startedUnseen ? fromFile - counter : 0;
    const bias = 2 * policy.counterStepMm + policy.maxRetractionMm + policy.crossCheckMarginMm;
    const flagged = Math.abs(off) > bias ? `the file says ${fromFile.toFixed(0)} mm, the printer's counter ${counter!.toFixed(0)} mm` : null;
    // What the lines read after the last report would add, at most.
    const gapMm = s.done || s.gapBytes === 0 ? 0 : sum(consumedAtByte(s.profile, s.byte + s.gapBytes)) - sum(consumedAtByte(s.profile, s.byte));
    return { mm, material: { source: 'file', uncertaintyMm: round(gapMm, 3), flagged } };
  }
  if (counterUsable) {
    return {
      mm: addPerExtruder(host, [Math.max(0, counter)]),
      material: {
        source: 'printer-counter',
        uncertaintyMm: 2 * policy.counterStepMm + policy.maxRetractionMm,
        flagged: s.startedUnseen ? "the print started before the gateway connected: the printer's counter misses what it printed before" : null,
      },
    };
  }
  const r = s.readings;
  return {
    mm: addPerExtruder(host, [r.doneMm + (Number.isNaN(r.highE) ? 0 : r.highE - r.segmentStartE)]),
    material: { source: 'position-estimate', uncertaintyMm: null, flagged: "neither the file nor the printer's counter is known: estimated from extruder positions, which can miss most of a print" },
  };
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/** An ended SD job's filament from its file, up to the byte the printer read (all of it when the firmware said it was done). */
export function endedJobFromFile(job: JobEnded, profile: FileProfile, spec: FilamentSpec): { filamentMm: number; filamentG: number } {
  const mm = sum(consumedAtByte(profile, job.sd!.done ? job.sd!.total : job.sd!.byte));
  return { filamentMm: round(mm, 3), filamentG: round(gramsOf(mm, spec), 3) };
}

/**
 * The bytes the printer may have read since its last report, at `nowMono`: the largest step
 * between its recent reports (it reports at intervals, and may read in bursts between them), and
 * its recent speed over the time since.
 */
export function sdGapBytes(s: SdProgress, nowMono: number): number {
  const last = s.reports.at(-1);
  const first = s.reports[0];
  if (!last || !first || last.mono === first.mono) return 0;
  const step = Math.max(...s.reports.slice(1).map((r, i) => r.byte - s.reports[i]!.byte));
  const bytesPerMs = (last.byte - first.byte) / (last.mono - first.mono);
  return Math.ceil(step + bytesPerMs * (nowMono - last.mono));
}

/** Keeps the reports of the last few seconds. */
export function withSdReport(s: SdProgress, byte: number, total: number, nowMono: number): void {
  s.byte = byte;
  s.total = total;
  s.reports.push({ mono: nowMono, byte });
  while (s.reports.length > 2 && nowMono - s.reports[1]!.mono > 3000) s.reports.shift();
}

function counterUsedMm(s: SdProgress): number | null {
  return s.counterStartMm !== null && s.counterNowMm !== null ? s.counterNowMm - s.counterStartMm : null;
}

/** Filament per extruder, mm. */
export function jobFilamentByExtruderMm(job: ActiveJob, policy: MaterialPolicy): number[] {
  return jobMaterial(job, policy).mm;
}

export function jobInfo(job: ActiveJob, state: JobInfo['state'], spec: FilamentSpec, policy: MaterialPolicy): JobInfo {
  const { mm: perExtruder, material } = jobMaterial(job, policy);
  const mm = perExtruder.reduce((a, b) => a + b, 0);
  const sd = job.sd;
  const progress = job.mode === 'host' ? (job.lines.length ? job.acked / job.lines.length : 0) : sd!.done ? 1 : sd!.total ? sd!.byte / sd!.total : 0;
  return {
    id: job.id,
    mode: job.mode,
    file: job.file,
    startedAt: job.startedAt.toISOString(),
    state,
    progress: Math.min(1, progress),
    filamentMm: round(mm, 3),
    filamentG: round(gramsOf(mm, spec), 3),
    material,
  };
}

export function jobCheckpoint(job: ActiveJob, spec: FilamentSpec, policy: MaterialPolicy, nowMono: number): JobCheckpoint {
  const { filamentMm, filamentG, progress, material } = jobInfo(job, 'printing', spec, policy);
  return { filamentMm, filamentG, material, progress, durationS: jobDurationS(job, nowMono) };
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
    ...(cp?.data.material && { material: cp.data.material }),
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

/** What the firmware's print counter says the job used, read at its start and after its end; null: one was not answered. */
export function printCounterUsedMm(job: ActiveJob): number | null | undefined {
  if (!job.sd) return undefined;
  return job.sd.counterFinal ? counterUsedMm(job.sd) : null;
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

/**
 * The material of several jobs (a session's): the least exact source decides, uncertainties add
 * up (unknown if any is), every flag is kept. Null: no job.
 */
export function combinedMaterial(materials: readonly Material[]): Material | null {
  if (materials.length === 0) return null;
  const order: MaterialSource[] = ['file', 'printer-counter', 'position-estimate'];
  const source = order[Math.max(...materials.map((m) => order.indexOf(m.source)))]!;
  const uncertaintyMm = materials.some((m) => m.uncertaintyMm === null) ? null : materials.reduce((a, m) => a + m.uncertaintyMm!, 0);
  const flags = [...new Set(materials.map((m) => m.flagged).filter((f) => f !== null))];
  return { source, uncertaintyMm, flagged: flags.length ? flags.join('; ') : null };
}
