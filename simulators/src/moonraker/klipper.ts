/**
 * The Klipper side of the simulated Moonraker host: the printer objects Moonraker serves
 * (Moonraker's docs/printer_objects.md — print_stats, virtual_sdcard, display_status, extruder,
 * heater_bed, webhooks), printing files from the host's `gcodes` folder as Klipper's
 * virtual_sdcard does, and the job history Moonraker keeps (docs/external_api/history.md).
 *
 * The physical side is the serial printer simulator's own model (../printer/physical-model.ts):
 * heaters, axes and each extruder's motor with the filament it really pushed (the ground truth).
 * `print_stats.filament_used` is counted as Klipper's print_stats.py counts it: the change of the
 * E position since the print started, signed (a retraction takes off what its un-retraction adds
 * back), in G-code units.
 */
import { EventEmitter } from 'node:events';
import { Heaters, Motion } from '../printer/physical-model.js';
import { demoGcode } from '../printer/sample-gcode.js';

export type KlippyState = 'ready' | 'startup' | 'shutdown' | 'error' | 'disconnected';
export type PrintState = 'standby' | 'printing' | 'paused' | 'complete' | 'error' | 'cancelled';

/** A Moonraker history entry (docs/external_api/history.md, "Job History"). */
export interface HistoryEntry {
  job_id: string;
  user: string | null;
  filename: string;
  exists: boolean;
  status: 'in_progress' | 'completed' | 'cancelled' | 'error' | 'klippy_shutdown' | 'klippy_disconnect' | 'interrupted';
  start_time: number;
  end_time: number | null;
  print_duration: number;
  total_duration: number;
  filament_used: number;
  metadata: { size: number };
  auxiliary_data: unknown[];
}

export interface KlipperOptions {
  /** Files in the gcodes folder: name → G-code. It always holds demo.gcode too. */
  files?: Record<string, string>;
  /** Simulated seconds per real second (heating, printing). */
  timeScale?: number;
  /** G-code lines the virtual SD card runs per simulated second. */
  linesPerS?: number;
  filamentDiameterMm?: number;
  densityGPerCm3?: number;
  /**
   * Thermistor noise, ± °C: Klipper's readings of a heater at rest still change between two
   * updates, so a real host sends temperatures every 250 ms whatever the printer does. 0: none.
   */
  sensorNoiseC?: number;
}

export interface JobTruth {
  file: string;
  /** Filament the extruder motor really pushed past its highest point since the job started, mm. */
  extrudedMm: number;
  extrudedG: number;
  /** What print_stats.filament_used says now (net of the retraction outstanding). */
  filamentUsedMm: number;
}

/** `change`: the printer objects changed (Moonraker sends what changed to its subscribers). `klippy`: Klipper's state changed. */
export class KlipperSim extends EventEmitter<{ change: []; klippy: [KlippyState] }> {
  readonly opts: Required<KlipperOptions>;
  readonly heaters = new Heaters();
  private readonly motion = new Motion();
  klippy: KlippyState = 'ready';
  klippyMessage = 'Printer is ready';
  private stats = { state: 'standby' as PrintState, filename: '', filament_used: 0, message: '', total_duration: 0, print_duration: 0 };
  private displayMessage = '';
  private sd: { file: string; lines: string[]; next: number; position: number; size: number } | null = null;
  private usedAtStart = 0;
  private peakMm = 0;
  private printStartS = 0;
  private pausedS = 0;
  private pausedAtS: number | null = null;
  private waitFor: 'hotend' | 'bed' | null = null;
  private budget = 0;
  private lastTickS = 0;
  private timer: NodeJS.Timeout | null = null;
  readonly history: HistoryEntry[] = [];
  private nextJobId = 1;
  private lastJob: JobTruth | null = null;

  constructor(opts: KlipperOptions = {}) {
    super();
    this.opts = { timeScale: 1, linesPerS: 200, filamentDiameterMm: 1.75, densityGPerCm3: 1.24, sensorNoiseC: 0.1, ...opts, files: { 'demo.gcode': demoGcode(), ...opts.files } };
    this.lastTickS = this.simNowS();
    this.timer = setInterval(() => this.tick(), 20);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The printer objects now, as printer.objects.query returns them. */
  objects(): Record<string, Record<string, unknown>> {
    this.heaters.integrate(this.opts.timeScale);
    const sd = this.sd;
    const progress = sd && sd.size ? sd.position / sd.size : 0;
    const noise = this.opts.sensorNoiseC;
    const round2 = (x: number) => Math.round((x + (noise ? (Math.random() * 2 - 1) * noise : 0)) * 100) / 100;
    return {
      webhooks: { state: this.klippy, state_message: this.klippyMessage },
      print_stats: { ...this.stats, filament_used: this.stats.filament_used, info: { total_layer: null, current_layer: null } },
      virtual_sdcard: { file_path: sd ? `/home/pi/printer_data/gcodes/${sd.file}` : null, progress, is_active: this.stats.state === 'printing', file_position: sd?.position ?? 0, file_size: sd?.size ?? 0 },
      display_status: { message: this.displayMessage, progress },
      extruder: { temperature: round2(this.heaters.hotend.actual), target: this.heaters.hotend.target, power: 0, can_extrude: this.heaters.hotend.actual >= 170, pressure_advance: 0, smooth_time: 0.04, motion_queue: null },
      heater_bed: { temperature: round2(this.heaters.bed.actual), target: this.heaters.bed.target, power: 0 },
      toolhead: { position: [this.motion.pos.x, this.motion.pos.y, this.motion.pos.z, this.motion.filamentUsedMm], status: 'Ready' },
    };
  }

  get files(): Record<string, string> {
    return this.opts.files;
  }

  get printing(): boolean {
    return this.stats.state === 'printing' || this.stats.state === 'paused';
  }

  // ---- what a user (or the API) does ----

  /** SDCARD_PRINT_FILE: starts printing a file of the gcodes folder. Throws Klipper's words when it cannot. */
  startPrint(filename: string): void {
    if (this.klippy !== 'ready') throw new Error(`Klippy not ready: ${this.klippy}`);
    if (this.printing) throw new Error('SD busy');
    const text = this.opts.files[filename];
    if (text === undefined) throw new Error(`File ${filename} not found`);
    this.sd = { file: filename, lines: text.split('\n'), next: 0, position: 0, size: Buffer.byteLength(text, 'latin1') };
    this.usedAtStart = this.motion.filamentUsedMm;
    this.peakMm = 0;
    this.printStartS = this.simNowS();
    this.pausedS = 0;
    this.pausedAtS = null;
    this.stats = { state: 'printing', filename, filament_used: 0, message: '', total_duration: 0, print_duration: 0 };
    this.lastJob = null;
    // Moonraker's history adds the job when print_stats says it prints
    this.history.unshift({
      job_id: (this.nextJobId++).toString(16).toUpperCase().padStart(6, '0'),
      user: null,
      filename,
      exists: true,
      status: 'in_progress',
      start_time: Date.now() / 1000,
      end_time: null,
      print_duration: 0,
      total_duration: 0,
      filament_used: 0,
      metadata: { size: this.sd.size },
      auxiliary_data: [],
    });
    this.emit('change');
  }

  pause(): void {
    if (this.stats.state !== 'printing') throw new Error('Print is not currently printing');
    this.stats.state = 'paused';
    this.pausedAtS = this.simNowS();
    this.emit('change');
  }

  resume(): void {
    if (this.stats.state !== 'paused') throw new Error('Print is not paused, resume aborted');
    this.pausedS += this.simNowS() - (this.pausedAtS ?? this.simNowS());
    this.pausedAtS = null;
    this.stats.state = 'printing';
    this.emit('change');
  }

  cancel(): void {
    if (!this.printing) throw new Error('Print is not currently printing');
    this.endPrint('cancelled', 'cancelled', '');
  }

  /** An emergency stop or an MCU error: Klipper shuts down, the print with it, until a FIRMWARE_RESTART. */
  shutdown(message: string): void {
    this.klippy = 'shutdown';
    this.klippyMessage = `${message}\nOnce the underlying issue is corrected, use the "FIRMWARE_RESTART" command to reset the firmware, reload the config, and restart the host software.\nPrinter is shutdown`;
    this.heaters.off();
    if (this.printing) this.endPrint('error', 'klippy_shutdown', message);
    this.emit('change');
    this.emit('klippy', 'shutdown');
  }

  /** FIRMWARE_RESTART / RESTART: Klipper starts afresh (Moonraker loses it, then finds it ready). */
  restartKlipper(): void {
    if (this.printing) this.endPrint('error', 'klippy_disconnect', 'Klipper restarted');
    this.klippy = 'disconnected';
    this.emit('klippy', 'disconnected');
    setTimeout(() => {
      this.klippy = 'ready';
      this.klippyMessage = 'Printer is ready';
      this.stats = { state: 'standby', filename: '', filament_used: 0, message: '', total_duration: 0, print_duration: 0 };
      this.sd = null;
      this.emit('klippy', 'ready');
      this.emit('change');
    }, 200);
  }

  /** The ground truth of the current job, or of the last one. */
  truth(): JobTruth | null {
    if (!this.printing) return this.lastJob;
    return this.jobTruth();
  }

  // ---- time ----

  private simNowS(): number {
    return (performance.now() / 1000) * this.opts.timeScale;
  }

  private tick(): void {
    this.heaters.integrate(this.opts.timeScale);
    const now = this.simNowS();
    const dt = now - this.lastTickS;
    this.lastTickS = now;
    if (this.stats.state !== 'printing' || this.klippy !== 'ready') return;
    if (this.waitFor) {
      const h = this.heaters[this.waitFor];
      if (Math.abs(h.actual - h.target) >= 1) return this.updateDurations(now);
      this.waitFor = null;
    }
    this.budget = Math.min(this.budget + dt * this.opts.linesPerS, this.opts.linesPerS * 5);
    while (this.budget >= 1 && this.stats.state === 'printing' && !this.waitFor) {
      this.budget--;
      if (!this.step()) break;
    }
    this.updateDurations(now);
    this.emit('change');
  }

  private updateDurations(now: number): void {
    if (!this.printing) return;
    this.stats.total_duration = now - this.printStartS;
    this.stats.print_duration = this.stats.total_duration - this.pausedS;
    const h = this.history[0];
    if (h?.status === 'in_progress') Object.assign(h, { total_duration: this.stats.total_duration, print_duration: this.stats.print_duration, filament_used: this.stats.filament_used });
  }

  /** Runs the next line of the file; false at its end (the print is complete). */
  private step(): boolean {
    const sd = this.sd!;
    if (sd.next >= sd.lines.length) {
      this.endPrint('complete', 'completed', '');
      return false;
    }
    const line = sd.lines[sd.next++]!;
    sd.position = Math.min(sd.size, sd.position + Buffer.byteLength(line, 'latin1') + 1);
    this.execute(line);
    const used = this.motion.filamentUsedMm - this.usedAtStart;
    this.stats.filament_used = used;
    this.peakMm = Math.max(this.peakMm, used);
    return true;
  }

  private endPrint(state: PrintState, historyStatus: HistoryEntry['status'], message: string): void {
    this.updateDurations(this.simNowS());
    this.stats.state = state;
    this.stats.message = message;
    this.waitFor = null;
    this.lastJob = this.jobTruth();
    const h = this.history[0];
    if (h?.status === 'in_progress') Object.assign(h, { status: historyStatus, end_time: Date.now() / 1000, filament_used: this.stats.filament_used });
    this.emit('change');
  }

  private jobTruth(): JobTruth {
    const mm = this.peakMm;
    return {
      file: this.stats.filename,
      extrudedMm: mm,
      extrudedG: (mm * Math.PI * (this.opts.filamentDiameterMm / 2) ** 2 * this.opts.densityGPerCm3) / 1000,
      filamentUsedMm: this.stats.filament_used,
    };
  }

  /** The G-code Klipper runs for a print, on the shared physical model. */
  private execute(raw: string): void {
    const code = raw.split(';')[0]!.trim();
    const cmd = /^([GMT])(\d+)/.exec(code);
    if (!cmd) return;
    const word = `${cmd[1]}${Number(cmd[2])}`;
    const params = new Map<string, number>();
    for (const p of code.slice(cmd[0].length).matchAll(/([A-Z])\s*(-?\d*\.?\d+)/g)) params.set(p[1]!, Number(p[2]));
    const param = (k: string) => params.get(k);
    const m = this.motion;
    switch (word) {
      case 'G0':
      case 'G1':
      case 'G2':
      case 'G3':
        m.move(param, this.simNowS());
        return;
      case 'G28':
        m.pos = { x: 0, y: 0, z: 0 };
        return;
      case 'G90':
      case 'G91':
        m.relative = word === 'G91';
        m.relativeE = null;
        return;
      case 'M82':
      case 'M83':
        m.relativeE = word === 'M83';
        return;
      case 'G92': {
        const e = param('E');
        if (e !== undefined) m.eLogical[m.tool] = e;
        else if (!['X', 'Y', 'Z'].some((k) => param(k) !== undefined)) m.eLogical[m.tool] = 0;
        return;
      }
      case 'M104':
      case 'M109':
      case 'M140':
      case 'M190': {
        const heater = word === 'M104' || word === 'M109' ? 'hotend' : 'bed';
        this.heaters[heater].target = param('S') ?? 0;
        if (word === 'M109' || word === 'M190') this.waitFor = heater;
        return;
      }
      case 'M117':
        this.displayMessage = code.slice(4).trim();
        return;
      default:
        if (word[0] === 'T') m.selectTool(Number(word.slice(1)));
    }
  }
}
