/**
 * A 3D printer on a serial line (Marlin 2.x, Prusa MK3, RepRapFirmware): connection and
 * capabilities, temperatures and faults, print jobs streamed by the gateway (print-host mode)
 * or followed while the printer prints from its SD card, and the filament each job used.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { EventEmitter } from 'node:events';
import type { PrinterConfig } from '../../config/schema.js';
import { storageProblemOf, type Journal } from '../../journal/journal.js';
import type { Logger } from '../../log.js';
import { SerialLink } from '../../transport/serial-link.js';
import { deviceHealth, deviceState, type Device, type DeviceHealth, type DeviceProblem, type DeviceState } from '../device.js';
import { applyGcode, gramsOf, MATERIAL_DENSITY, stripLine, type FilamentSpec } from './filament.js';
import { DIALECTS, type PrinterDialect } from './dialects.js';
import { GcodeLibrary } from './gcode-library.js';
import {
  addPerExtruder,
  afterExtruderReading,
  combinedMaterial,
  endedJobFromFile,
  jobCheckpoint,
  jobDurationS,
  jobFilamentByExtruderMm,
  jobInfo,
  jobMaterial,
  newJob,
  printCounterUsedMm,
  sdGapBytes,
  withSdReport,
  type ActiveJob,
  type JobInfo,
  type JobMetered,
  type JobOutcome,
  type Material,
  type MaterialPolicy,
} from './job.js';
import { JobStore } from './job-store.js';
import { LineProtocol, parseAdvancedOk } from './line-protocol.js';
import { StatusPolling } from './polling.js';
import { printerStateOf, type PrinterState } from './printer-state.js';
import { parseSdNameLine, type SdStatus, type Temperatures } from './responses.js';

/** What an SD print is called until the printer says its file's name. */
const UNNAMED = 'SD card';
/** Marlin prints the counter in metres with two decimals, Prusa-Firmware in whole centimetres. */
const COUNTER_STEP_MM = 10;

export interface PrinterEvents {
  state: [PrinterState];
  /** A job ended. */
  job: [JobInfo];
  /** A running job got further: a line acknowledged (print-host mode) or a byte count reported (SD mode); 0..1. */
  progress: [{ jobId: string; progress: number }];
}

const MAX_LINE = 1024;
/**
 * Line sessions an owed M999 goes first in until it is acknowledged: it can be lost with a port
 * that closes, but RepRapFirmware restarts on it without a word, and must not be restarted forever.
 */
const CLEAR_HALT_TRIES = 2;

export interface PrinterOptions {
  /** How often a running job's progress is saved (`gateway.checkpointS`). */
  checkpointMs: number;
  /** Where the G-code files the gateway holds for this printer are kept. */
  gcodeDir: string;
  /** What the config's `gcodeFiles` are relative to. */
  baseDir?: string;
  now?: () => Date;
}

export class Printer extends EventEmitter<PrinterEvents> implements Device {
  readonly kind = 'printer';
  private readonly log: Logger;
  private readonly link: SerialLink;
  private readonly protocol: LineProtocol;
  private readonly polling: StatusPolling;
  private readonly jobs: JobStore;
  private readonly spec: FilamentSpec;
  private readonly dialect: PrinterDialect;
  private readonly now: () => Date;
  private rx = '';
  private connected = false;
  private ready = false;
  /** A timeout found the printer saying nothing at all; it is unresponsive until it says anything. */
  private unresponsive = false;
  /** When anything was last heard, performance.now(). */
  private heardMono = 0;
  /** M999 owed to a halted printer whose fault a maintainer cleared: the line sessions it still goes first in. */
  private clearHaltTries = 0;
  private since = new Date();
  private lastSeen: Date | null = null;
  private firmware: { name: string; fields: Record<string, string> } | null = null;
  private capabilities: Record<string, boolean> = {};
  private temps: Temperatures | null = null;
  private fault: { kind: string; text: string; at: string } | null = null;
  private job: ActiveJob | null = null;
  private lastJob: JobInfo | null = null;
  /** Filament of the jobs ended since the gateway started, per extruder, mm. */
  private endedJobsMm: number[] = [];
  /** Last `Stats: Filament used` reading (M78), mm; null when the firmware has no print counter. */
  private printCounterMm: number | null = null;
  private readonly library: GcodeLibrary;
  private readonly policy: MaterialPolicy;
  /** The material of every job since the gateway started, by order of start (sessions combine theirs). */
  private readonly materials: { jobId: string; material: Material }[] = [];
  /** SD: a print seen, its name and counter being read before its job opens. */
  private sdOpening = false;
  /** The line the printer sent before this one (Prusa-Firmware names the SD file on the line before its status). */
  private lineBefore: string | null = null;
  private sdLatest = { byte: 0, total: 0 };
  private sdFileName: { dos: string; long: string | null } | 'none' | null = null;
  /** The printer said it was not printing from SD since the link opened: a print seen after that started with the gateway watching. */
  private sawSdIdle = false;
  /** The print counter last read while not printing (null: not since the link opened), where a print from the card starts from. */
  private idleCounterMm: number | null = null;
  /** The SD print ended while its job was opening. */
  private sdEndedWhileOpening: { outcome: JobOutcome; reason: string } | null = null;
  private startTimer: NodeJS.Timeout | null = null;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private everConnected = false;
  private stateNow: PrinterState = 'offline';
  /** The health's state, to know since when the printer is in it. */
  private healthNow: DeviceState = 'offline';
  private readonly counters = { resets: 0, oversizedLines: 0 };

  constructor(
    private readonly cfg: PrinterConfig,
    private readonly journal: Journal,
    log: Logger,
    private readonly opts: PrinterOptions,
  ) {
    super();
    this.log = log.child({ device: cfg.id });
    this.now = opts.now ?? (() => new Date());
    this.link = new SerialLink(cfg.serial, this.log);
    this.dialect = DIALECTS[cfg.dialect];
    const density = cfg.filament.densityGPerCm3 ?? MATERIAL_DENSITY[cfg.filament.material.toUpperCase()]!;
    this.spec = { diameterMm: cfg.filament.diameterMm, densityGPerCm3: density };
    this.jobs = new JobStore(journal, cfg.id);
    this.library = new GcodeLibrary(opts.gcodeDir, this.dialect.positioningSetsE);
    this.policy = { counterStepMm: COUNTER_STEP_MM, maxRetractionMm: cfg.maxRetractionMm, crossCheckMarginMm: cfg.sdCrossCheckMarginMm };
    const { communicationMs, maxConsecutive } = cfg.timeouts;
    this.protocol = new LineProtocol(
      { maxConsecutiveResends: cfg.maxConsecutiveResends, rxBufferBytes: cfg.rxBufferBytes, communicationMs, maxConsecutiveTimeouts: maxConsecutive },
      {
        write: (text) => this.link.write(text),
        pull: () => this.nextJobLine(),
        giveUp: (reason) => {
          this.log.warn({ reason }, 'printer not answering properly; reopening the port');
          this.link.restart(reason);
        },
        silent: () => this.onSilent(),
      },
    );
    this.polling = new StatusPolling(
      this.dialect,
      this.protocol,
      // the firmware's busy keep-alive well inside the timeout: a printer busy with a long command is never silent
      { intervalS: cfg.pollIntervalS, positionMs: cfg.sdPositionPollMs, keepaliveS: Math.max(1, Math.floor(communicationMs / 2500)) },
      () => this.ready,
      () => this.sdPolls(),
      // the counter while idle: a print from the card is then measured from before it started
      () => (this.job || this.sdOpening ? [] : [this.dialect.gcode.printCounter]),
    );
  }

  get id(): string {
    return this.cfg.id;
  }

  get state(): PrinterState {
    return this.stateNow;
  }

  /** The tool is in use: a job is running or paused, or it is heating. Sessions never cut power then. */
  get busy(): boolean {
    return this.job !== null || this.stateNow === 'heating';
  }

  /** A running count of filament metered since the gateway started (ended jobs and the current one), per extruder, mm. */
  get filamentCountersMm(): number[] {
    return addPerExtruder(this.endedJobsMm, this.job ? jobFilamentByExtruderMm(this.job, this.policy) : []);
  }

  /** Where the material counted from now on starts: the running job, or the next one. */
  get jobMark(): number {
    return this.job ? this.materials.findIndex((m) => m.jobId === this.job!.id) : this.materials.length;
  }

  /** The material of the jobs from a mark on (a session's), the running one as it stands; null: no job. */
  materialSince(mark: number): Material | null {
    return combinedMaterial(this.materials.slice(Math.max(0, mark)).map((m) => (this.job?.id === m.jobId ? jobMaterial(this.job, this.policy).material : m.material)));
  }

  /**
   * Keeps a G-code file for prints from the printer's own card: one of this name and size is then
   * metered exactly. Returns what the file will use, and what the ended jobs of this file metered
   * otherwise used by it (journaled with jobMetered once their sessions are settled).
   */
  holdFile(name: string, gcode: string): { name: string; bytes: number; filamentMm: number; filamentG: number; metered: JobMetered[] } {
    this.library.put(name, gcode);
    const p = this.library.find(name, Buffer.byteLength(gcode, 'latin1'))!;
    // given during the print it meters: the job is metered from the file from now on
    const s = this.job?.sd;
    if (s && !s.profile && this.job!.file.toLowerCase() === name.toLowerCase() && p.bytes === s.total) s.profile = p;
    // given after the print: what the jobs of this file that ended without it used, up to the byte each read
    const metered = this.jobs.endedWithoutFile(name, p.bytes).map(({ startedAt, endedAt, job }): JobMetered => ({
      jobId: job.jobId,
      file: job.file,
      startedAt,
      endedAt,
      before: { filamentMm: job.filamentMm, filamentG: job.filamentG, material: job.material ?? null },
      ...endedJobFromFile(job, p, this.spec),
    }));
    const mm = (p.consumed.at(-1) ?? []).reduce((a, b) => a + b, 0);
    return { name, bytes: p.bytes, filamentMm: Math.round(mm * 1000) / 1000, filamentG: Math.round(gramsOf(mm, this.spec) * 1000) / 1000, metered };
  }

  /** Journals an ended job metered from its file given since (`printer.job-metered`): it is not metered again. */
  jobMetered(m: JobMetered): void {
    this.jobs.metered(m);
    this.log.info({ jobId: m.jobId }, `job ${m.file} metered from its file given after it ended: ${m.filamentG} g (was ${m.before.filamentG} g)`);
  }

  /** The filament the printer holds, as configured (its density filled in from the material when not given). */
  get filament(): { material: string; diameterMm: number; densityGPerCm3: number } {
    return { material: this.cfg.filament.material, diameterMm: this.spec.diameterMm, densityGPerCm3: this.spec.densityGPerCm3 };
  }

  /** Whether G90/G91 also switch E in this printer's firmware (its dialect): how a file's extrusion is counted. */
  get positioningSetsE(): boolean {
    return this.dialect.positioningSetsE;
  }

  /** The last temperatures the printer reported; null: none yet. */
  get temperatures(): Temperatures | null {
    return this.temps;
  }

  /** grams for a length of this printer's filament */
  gramsOf(mm: number): number {
    return gramsOf(mm, this.spec);
  }

  get currentJob(): JobInfo | null {
    return this.job ? jobInfo(this.job, this.job.paused ? 'paused' : 'printing', this.spec, this.policy) : null;
  }

  get finishedJob(): JobInfo | null {
    return this.lastJob;
  }

  start(): void {
    for (const file of this.cfg.gcodeFiles) {
      const path = resolve(this.opts.baseDir ?? '.', file);
      let text: string;
      try {
        text = readFileSync(path, 'latin1');
      } catch (err) {
        throw new Error(`devices.${this.cfg.id}.gcodeFiles: cannot read ${path} (${(err as Error).message})`);
      }
      this.library.put(basename(path), text);
    }
    const ended = this.jobs.endInterrupted();
    if (ended.length) this.log.warn({ jobs: ended.map((e) => e.jobId) }, `ended ${ended.length} job(s) cut short by a crash or power cut, with the filament of their last checkpoint`);
    this.checkpointTimer = setInterval(() => this.checkpoint(), this.opts.checkpointMs);
    this.link.on('open', () => this.onOpen());
    this.link.on('close', (reason) => this.onClose(reason));
    this.link.on('data', (chunk) => this.onData(chunk));
    this.link.start();
  }

  async stop(): Promise<void> {
    this.clearTimers();
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    this.link.removeAllListeners();
    if (this.job) this.endJob('interrupted', 'the gateway stopped');
    this.protocol.reset();
    await this.link.stop();
  }

  health(): DeviceHealth {
    return deviceHealth(this.cfg, this.kind, { online: this.ready, lastSeen: this.lastSeen, since: this.since, problem: this.problem() }, {
      dialect: this.dialect.label,
      printerState: this.stateNow,
      busy: this.busy,
      firmware: this.firmware,
      capabilities: this.capabilities,
      temperatures: this.temps,
      printCounterMm: this.printCounterMm,
      fault: this.fault,
      job: this.currentJob,
      lastJob: this.lastJob,
      filament: { ...this.cfg.filament, densityGPerCm3: this.spec.densityGPerCm3 },
      link: this.link.stats,
      protocol: { ...this.protocol.stats, ...this.counters },
    });
  }

  // ---- jobs ----

  /** Print-host mode: streams G-code to the printer. Filament is counted from each acknowledged command. */
  startJob(file: string, gcode: string): JobInfo {
    if (!this.ready) throw new PrinterRefusal(`${this.cfg.id} is not connected`);
    if (this.fault) throw new PrinterRefusal(`${this.cfg.id} has a fault (${this.fault.text}); a maintainer must clear it first`);
    if (this.job) throw new PrinterRefusal(`${this.cfg.id} is already printing ${this.job.file}`);
    const lines = gcode.split(/\r?\n/).map(stripLine).filter((l) => l.length > 0);
    if (lines.length === 0) throw new PrinterRefusal(`${file}: no G-code in the file`, 400);
    this.library.put(file, gcode);
    this.job = this.openJob('host', file, lines);
    this.updateState();
    this.protocol.kick();
    return this.currentJob!;
  }

  pause(): void {
    const job = this.requireJob();
    if (job.mode === 'sd') this.protocol.send({ line: this.dialect.gcode.pauseSd });
    job.paused = true;
    this.updateState();
  }

  resume(): void {
    const job = this.requireJob();
    job.paused = false;
    if (job.mode === 'sd') this.protocol.send({ line: this.dialect.gcode.resumeSd });
    this.updateState();
    this.protocol.kick();
  }

  /** Stops the job; the cancel script runs and its extrusion is metered with the job. */
  cancel(): void {
    const job = this.requireJob();
    if (job.cancelling) throw new PrinterRefusal(`${this.cfg.id} is already cancelling ${job.file}`);
    job.cancelling = true;
    job.paused = false;
    if (job.mode === 'sd') this.protocol.send({ line: this.dialect.gcode.abortSd });
    const script = this.cfg.cancelScript;
    script.forEach((line, i) =>
      this.protocol.send({
        line,
        onAck: () => {
          this.meter(job, line);
          if (i === script.length - 1) this.endJob('cancelled', 'cancelled');
        },
      }),
    );
    if (script.length === 0) this.endJob('cancelled', 'cancelled');
  }

  /**
   * A maintainer clears a fault after looking at the printer: M999 resumes a halted firmware.
   * The halted firmware acknowledges nothing, so M999 cannot wait behind the line it never
   * acknowledged: the line protocol starts afresh, M999 first, then `M110 N0`. Not connected,
   * it goes first when the printer is (see CLEAR_HALT_TRIES).
   */
  clearFault(): void {
    if (!this.fault) return;
    this.journal.record('device.fault-cleared', this.cfg.id, { kind: this.fault.kind, text: this.fault.text });
    this.fault = null;
    this.clearHaltTries = CLEAR_HALT_TRIES;
    if (this.ready) this.restartLine();
    else if (this.connected) this.handshake();
    this.updateState();
  }

  private requireJob(): ActiveJob {
    if (!this.job) throw new PrinterRefusal(`${this.cfg.id} is not printing`);
    return this.job;
  }

  private openJob(mode: 'host' | 'sd', file: string, lines: string[]): ActiveJob {
    const job = newJob({ id: randomUUID(), mode, file, lines, startedAt: this.now(), startedMono: performance.now() }, this.dialect.positioningSetsE);
    this.jobs.started({ jobId: job.id, mode, file, lines: lines.length || undefined });
    this.materials.push({ jobId: job.id, material: jobMaterial(job, this.policy).material });
    this.log.info({ jobId: job.id, mode, file }, `job started: ${file}`);
    return job;
  }

  private nextJobLine() {
    const job = this.job;
    if (!job || job.mode !== 'host' || job.paused || job.cancelling || job.next >= job.lines.length) return null;
    const line = job.lines[job.next++]!;
    return {
      line,
      onAck: () => {
        job.acked++;
        this.meter(job, line);
        this.emit('progress', { jobId: job.id, progress: job.acked / job.lines.length });
        if (job.acked === job.lines.length && !job.cancelling && this.job === job) this.endJob('finished', 'all lines acknowledged');
      },
    };
  }

  private meter(job: ActiveJob, line: string): void {
    job.extrusion = applyGcode(job.extrusion, line).state;
  }

  /** Saves the running job's progress, so that a crash loses at most one interval of it. */
  private checkpoint(): void {
    const job = this.job;
    if (!job) return;
    try {
      this.jobs.checkpoint(job.id, jobCheckpoint(job, this.spec, this.policy, performance.now()), this.now());
    } catch (err) {
      // Disk full or read-only (the storage monitor says so): the job goes on; the next checkpoint tries again.
      if (storageProblemOf(err) === null) throw err;
    }
  }

  private endJob(outcome: JobOutcome, reason: string): void {
    const job = this.job;
    if (!job) return;
    this.job = null;
    const info = jobInfo(job, outcome, this.spec, this.policy);
    this.lastJob = info;
    this.endedJobsMm = addPerExtruder(this.endedJobsMm, jobFilamentByExtruderMm(job, this.policy));
    const entry = this.materials.find((m) => m.jobId === job.id);
    if (entry) entry.material = info.material;
    this.jobs.ended({
      jobId: job.id,
      mode: job.mode,
      file: job.file,
      outcome,
      reason,
      filamentMm: info.filamentMm,
      filamentG: info.filamentG,
      ...(job.sd && { sd: { byte: job.sd.byte, total: job.sd.total, done: job.sd.done } }),
      printCounterMm: printCounterUsedMm(job),
      material: info.material,
      durationS: jobDurationS(job, performance.now()),
    });
    if (info.material.flagged) {
      this.journal.record('printer.material-flagged', this.cfg.id, { jobId: job.id, file: job.file, source: info.material.source, text: info.material.flagged });
      this.log.warn({ jobId: job.id, source: info.material.source }, `job ${job.file}: material to check: ${info.material.flagged}`);
    }
    this.log.info({ jobId: job.id, outcome, filamentG: info.filamentG }, `job ${outcome}: ${job.file} (${reason})`);
    this.emit('job', info);
    this.updateState();
  }

  // ---- connection ----

  private onOpen(): void {
    this.journal.record(this.everConnected ? 'device.reconnected' : 'device.connected', this.cfg.id, { target: this.cfg.serial.path });
    this.everConnected = true;
    this.connected = true;
    this.ready = false;
    this.heardMono = performance.now();
    this.rx = '';
    this.sawSdIdle = this.sdOpening = false;
    this.idleCounterMm = null;
    this.updateState();
    // Opening the port resets most boards (DTR): wait for the banner, or go ahead if none comes.
    this.startTimer = setTimeout(() => this.handshake(), this.cfg.timeouts.startMs);
  }

  private onClose(reason: string): void {
    this.clearTimers();
    // Only acknowledged lines are metered: the line in flight when the link dropped may or
    // may not have reached the printer, so the job can be short by that one move.
    this.protocol.reset();
    if (this.job) this.endJob('interrupted', `connection lost: ${reason}`);
    const wasReady = this.ready;
    this.connected = this.ready = this.unresponsive = false;
    this.journal.record('device.lost', this.cfg.id, { reason });
    if (wasReady) this.log.warn({ reason }, 'printer offline');
    this.updateState();
  }

  private handshake(): void {
    if (this.startTimer) clearTimeout(this.startTimer);
    this.startTimer = null;
    this.beginLine();
    this.firmware = null;
    this.capabilities = {};
    this.protocol.setAdvancedOk(false);
    this.protocol.send({ line: this.dialect.gcode.capabilities, onAck: () => this.onCapabilities() });
  }

  private onCapabilities(): void {
    // ADVANCED_OK: several lines in flight once its oks say which line and how many slots are free
    this.protocol.setAdvancedOk(this.capabilities.ADVANCED_OK === true);
    this.polling.start(this.capabilities);
    this.ready = true;
    this.journal.record('device.hello', this.cfg.id, { firmware: this.firmware?.name ?? 'unknown', machine: this.firmware?.fields.MACHINE_TYPE, capabilities: this.capabilities });
    this.log.info({ firmware: this.firmware?.name }, 'printer online');
    this.updateState();
  }

  /** Starts the numbered line session, with the M999 owed to a halted printer first. */
  private beginLine(): void {
    if (this.clearHaltTries === 0) return this.protocol.begin();
    this.clearHaltTries--;
    this.protocol.begin({ line: this.dialect.gcode.clearHalt, onAck: () => (this.clearHaltTries = 0) });
  }

  /** Connected and past the handshake: the line session starts again, and so do the reports it dropped. */
  private restartLine(): void {
    this.polling.stop();
    this.beginLine();
    this.polling.start(this.capabilities);
  }

  private clearTimers(): void {
    this.polling.stop();
    if (this.startTimer) clearTimeout(this.startTimer);
    this.startTimer = null;
  }

  // ---- receiving ----

  private onData(chunk: Buffer): void {
    this.rx += chunk.toString('latin1');
    let nl: number;
    while ((nl = this.rx.indexOf('\n')) >= 0) {
      const line = this.rx.slice(0, nl).replace(/\r$/, '').trim();
      this.rx = this.rx.slice(nl + 1);
      if (line) this.onLine(line);
    }
    if (this.rx.length > MAX_LINE) {
      this.counters.oversizedLines++;
      this.log.warn({ head: this.rx.slice(0, 40) }, `dropped ${this.rx.length} bytes without a line end`);
      this.rx = '';
    }
  }

  private onLine(line: string): void {
    const before = this.lineBefore;
    this.lineBefore = line;
    this.lastSeen = this.now();
    if (this.unresponsive) this.onHeardAgain();
    this.heardMono = performance.now();
    // The common case while streaming, kept off the parsers below.
    if (line === 'ok') return this.protocol.onLine(true, null, false, true);
    if (line.startsWith('ok N') || line.startsWith('ok P')) {
      const adv = parseAdvancedOk(line);
      if (adv) return this.protocol.onLine(true, null, false, true, adv, line);
    }
    const parse = this.dialect.parse;
    if (parse.isStart(line)) return this.onStart();
    const fault = parse.fault(line);
    if (fault) return this.onFault(fault.kind, fault.text);

    const temps = parse.temperatures(line);
    if (temps) {
      this.temps = temps;
      this.updateState();
    }
    const fw = parse.firmware(line);
    if (fw) this.firmware = fw;
    const cap = parse.capability(line);
    if (cap) this.capabilities[cap[0]] = cap[1];
    const sd = parse.sdStatus(line);
    if (sd) this.onSdStatus(sd);
    // Prusa-Firmware names the file on the line before (after the job opens: it takes the name)
    const named = sd?.printing && this.dialect.sdStatusNamesFile ? parseSdNameLine(before) : null;
    if (named) this.onCurrentFile(named);
    const pos = parse.position(line);
    if (pos && this.job?.sd) this.job.sd.readings = afterExtruderReading(this.job.sd.readings, pos.e, this.cfg.maxRetractionMm);
    const counter = parse.printCounter(line);
    if (counter !== null) this.onPrintCounter(counter);
    const file = parse.currentFile(line);
    if (file) this.onCurrentFile(file);
    const cardLost = parse.cardLost(line);
    if (cardLost && this.job?.mode === 'sd' && !this.job.cancelling) this.closeSdJob('failed', cardLost);

    const ok = parse.isOk(line);
    // Auto-reports arrive whatever the printer is doing; temperatures with W: are M109's keep-alive.
    const autoReport = (temps !== null && !ok && !/\sW:/.test(line)) || sd !== null;
    this.protocol.onLine(ok, parse.resend(line), parse.isLineError(line), !autoReport, null, line);
  }

  /** `start` while connected: the board reset. A running job cannot continue; it is interrupted, keeping what it used. */
  private onStart(): void {
    if (this.ready || this.job) {
      this.counters.resets++;
      this.journal.record('printer.reset', this.cfg.id, { during: this.job?.file ?? null });
      this.log.warn('printer reset (start banner while connected)');
      if (this.job) this.endJob('interrupted', 'the printer reset');
      this.ready = false;
      this.updateState();
    }
    // Whatever was in flight died with the reset (no ok for it can come any more). Let the
    // rest of the banner arrive, then greet the firmware afresh.
    this.clearTimers();
    this.protocol.reset();
    this.startTimer = setTimeout(() => this.handshake(), 300);
  }

  private onFault(kind: string, text: string): void {
    if (this.fault && kind === 'halted') return; // the halt that follows the cause
    this.fault = { kind, text, at: this.now().toISOString() };
    this.journal.record('device.fault', this.cfg.id, { kind, text });
    this.log.error({ kind }, `printer fault: ${text}`);
    // The firmware has stopped: it answers nothing until it is resumed (M999, when a maintainer
    // clears the fault) or reset. The line protocol's timeouts reopen the port, which resets
    // most boards; the fault stays on record until a maintainer clears it.
    if (this.job?.sd) this.job.sd.gapBytes = sdGapBytes(this.job.sd, performance.now());
    if (this.job) this.endJob('failed', text);
    this.updateState();
  }

  /** The line protocol's timeout found the printer saying nothing at all (it has just been poked). */
  private onSilent(): void {
    // while connecting the printer is not online yet: silence there is a handshake that failed
    if (this.unresponsive || !this.ready) return;
    this.unresponsive = true;
    const silentMs = Math.round(performance.now() - this.heardMono);
    this.journal.record('device.unresponsive', this.cfg.id, { silentMs, job: this.job?.file ?? null });
    this.log.warn({ silentMs }, `printer silent for ${(silentMs / 1000).toFixed(1)} s`);
    this.updateState();
  }

  private onHeardAgain(): void {
    this.unresponsive = false;
    const silentMs = Math.round(performance.now() - this.heardMono);
    this.journal.record('device.responsive', this.cfg.id, { silentMs });
    this.log.info({ silentMs }, 'printer answering again');
    this.updateState();
  }

  /** What stops the connected printer working: a fault first (a halted firmware is silent too), or silence. */
  private problem(): DeviceProblem | null {
    if (this.fault) return { state: 'fault', reason: this.fault.text };
    if (this.unresponsive) return { state: 'unresponsive', reason: `no answer for ${Math.round((performance.now() - this.heardMono) / 1000)} s` };
    return null;
  }

  private onSdStatus(sd: SdStatus): void {
    if (sd.printing) {
      this.sdLatest = { byte: sd.byte, total: sd.total };
      // A print we did not start: another host or the printer's own menu started it from SD.
      if (!this.job && !this.sdOpening) this.openSdJob();
      if (this.job?.sd && !this.job.cancelling) {
        withSdReport(this.job.sd, sd.byte, sd.total, performance.now());
        this.emit('progress', { jobId: this.job.id, progress: sd.total ? Math.min(1, sd.byte / sd.total) : 0 });
      }
    } else {
      this.sawSdIdle = true;
      if (this.sdOpening) this.sdEndedWhileOpening = { outcome: sd.done ? 'finished' : 'cancelled', reason: sd.done ? 'done printing file' : 'SD print stopped' };
      const s = this.job?.sd;
      if (s && sd.done) s.done = true;
      if (s && !this.job!.paused && !this.job!.cancelling) {
        const finished = sd.done || (s.total > 0 && s.byte >= s.total);
        this.closeSdJob(finished ? 'finished' : 'cancelled', sd.done ? 'done printing file' : 'SD print stopped');
      }
    }
    this.updateState();
  }

  /**
   * A print from the card: its file's name (where the firmware says it) and the print counter are
   * read first, then the job opens, metered from the file when the gateway holds it.
   */
  private openSdJob(): void {
    this.sdOpening = true;
    this.sdFileName = null;
    this.sdEndedWhileOpening = null;
    const startedUnseen = !this.sawSdIdle;
    // Read while idle, the counter holds nothing of this print yet; read now, it may (the
    // printer may have worked through its first lines before it answers).
    const idle = startedUnseen ? null : this.idleCounterMm;
    const g = this.dialect.gcode;
    this.readCounter((now) => {
      const counter = idle ?? now;
      this.sdOpening = false;
      if (this.job || !this.ready) return;
      const named = this.sdFileName !== 'none' ? this.sdFileName : null;
      const job = (this.job = this.openJob('sd', named?.long ?? named?.dos ?? UNNAMED, []));
      const s = job.sd!;
      withSdReport(s, this.sdLatest.byte, this.sdLatest.total, performance.now());
      Object.assign(s, { counterStartMm: counter, counterNowMm: counter, counterLive: this.dialect.counterLive, startedUnseen });
      if (named) this.findSdFile(job, named);
      this.log.info({ jobId: job.id, source: jobMaterial(job, this.policy).material.source }, `SD print of ${job.file}: metered from ${s.profile ? 'the file' : 'the printer'}`);
      this.updateState();
      const ended = this.sdEndedWhileOpening;
      if (ended) {
        s.done = ended.outcome === 'finished';
        this.closeSdJob(ended.outcome, ended.reason);
      }
    }, g.currentFile);
  }

  /** `M27 C` answered: the name of the file printing, which may come after its job opened. */
  private onCurrentFile(file: { dos: string; long: string | null } | 'none'): void {
    this.sdFileName = file;
    const job = this.job;
    if (file === 'none' || !job?.sd || job.file !== UNNAMED) return;
    job.file = file.long ?? file.dos;
    this.findSdFile(job, file);
  }

  /** The file of an SD print, by its long or its DOS name, if the gateway holds it (same size). */
  private findSdFile(job: ActiveJob, named: { dos: string; long: string | null }): void {
    const s = job.sd!;
    s.profile = (named.long && this.library.find(named.long, s.total)) || this.library.find(named.dos, s.total);
  }

  /** The SD print ended: one last position and counter reading, then the job ends. */
  private closeSdJob(outcome: JobOutcome, reason: string): void {
    const job = this.job!;
    job.cancelling = true; // closing: ignore further status lines
    if (!job.sd!.done) job.sd!.gapBytes = sdGapBytes(job.sd!, performance.now());
    this.protocol.send({ line: this.dialect.gcode.position });
    this.readCounter((counter) => {
      const s = job.sd!;
      s.counterNowMm = counter;
      s.counterFinal = counter !== null;
      if (this.job === job) this.endJob(outcome, reason);
    });
  }

  /** Reads the print counter afresh (and `after` it, one more line): null when the printer did not answer it (no counter, or no answer). */
  private readCounter(then: (mm: number | null) => void, after: string | null = null): void {
    this.printCounterMm = null;
    if (!after) return void this.protocol.send({ line: this.dialect.gcode.printCounter, onAck: () => then(this.printCounterMm) });
    let counter: number | null = null;
    this.protocol.send({ line: this.dialect.gcode.printCounter, onAck: () => (counter = this.printCounterMm) });
    this.protocol.send({ line: after, onAck: () => then(counter) });
  }

  private onPrintCounter(mm: number): void {
    this.printCounterMm = mm;
    if (!this.job && !this.sdOpening) this.idleCounterMm = mm;
    const s = this.job?.sd;
    if (!s || this.job!.cancelling) return;
    // not answered when the job opened (the printer was busy): it starts from the first reading
    if (s.counterStartMm === null) s.counterStartMm = mm;
    if (s.counterLive) s.counterNowMm = mm;
  }

  /** SD mode: the position, for the estimate, and the counter where it meters the job. */
  private sdPolls(): string[] {
    const s = this.job?.sd;
    if (!s || this.job!.cancelling) return [];
    const g = this.dialect.gcode;
    // With the file, the byte read is all it takes; without, the counter meters and the position is the estimate.
    if (s.profile) return [g.sdStatus];
    return !s.counterLive || s.counterStartMm === null ? [g.position] : [g.position, g.printCounter];
  }

  private updateState(): void {
    const health = deviceState(this.ready, this.problem());
    if (health !== this.healthNow) {
      this.healthNow = health;
      this.since = this.now();
    }
    const next = printerStateOf({ connected: this.connected, ready: this.ready, faulted: this.fault !== null, job: this.job, temps: this.temps });
    if (next === this.stateNow) return;
    this.stateNow = next;
    this.emit('state', next);
  }
}

/** A request the printer cannot take now (409) or at all (400); the message says why. */
export class PrinterRefusal extends Error {
  constructor(
    message: string,
    readonly status: 400 | 409 = 409,
  ) {
    super(message);
  }
}
