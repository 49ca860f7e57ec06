/**
 * A simulated Marlin 2.x (or Prusa MK3) printer on the far end of a serial line: banner,
 * numbered and checksummed lines with resend requests, M115 capabilities, temperatures that
 * approach their targets, M155/M27 auto-reports, an SD card, G-code executed with its own
 * E accounting (the ground truth), and fault injection. Transport-agnostic like the node
 * simulator: attach a byte sink, feed it bytes.
 */
import { EventEmitter } from 'node:events';
import { sampleGcode } from './sample-gcode.js';

export type PrinterDialect = 'marlin' | 'prusa';

export interface PrinterSimOptions {
  dialect?: PrinterDialect;
  /** Simulated seconds per real second (heating, SD printing, print time). */
  timeScale?: number;
  /** Files on the SD card: name → G-code text. The card always holds demo.gcode too. */
  sdFiles?: Record<string, string>;
  /** Cap:AUTOREPORT_TEMP / Cap:AUTOREPORT_SD_STATUS. */
  autoreport?: boolean;
  filamentDiameterMm?: number;
  densityGPerCm3?: number;
  /** Real milliseconds between keep-alive lines (temperatures while M109 waits); Marlin uses one second. */
  keepaliveMs?: number;
}

export interface PrinterTruth {
  /** Filament the extruder motor really pushed past its highest point, per extruder, mm. */
  extrudedMm: number[];
  totalExtrudedMm: number;
  totalExtrudedG: number;
  /** Simulated seconds from the first to the last extruding move since the last reset. */
  printS: number;
  linesExecuted: number;
  resets: number;
  halted: boolean;
}

interface Heater {
  actual: number;
  target: number;
}

const AMBIENT = 22;

export class PrinterSim extends EventEmitter<{ line: [string] }> {
  readonly opts: Required<PrinterSimOptions>;
  private sink: ((bytes: Uint8Array) => void) | null = null;
  private rx = '';
  private lastLine = 0;
  private heaters: { hotend: Heater; bed: Heater } = { hotend: { actual: AMBIENT, target: 0 }, bed: { actual: AMBIENT, target: 0 } };
  private physicsAt = performance.now();
  // firmware motion state
  private relative = false;
  private relativeE: boolean | null = null;
  private tool = 0;
  private eLogical: number[] = [0];
  private motor: number[] = [0];
  private highWater: number[] = [0];
  private pos = { x: 0, y: 0, z: 0 };
  private halted = false;
  private linesExecuted = 0;
  private resets = 0;
  private firstExtrudeS: number | null = null;
  private lastExtrudeS = 0;
  private filamentUsedMm = 0; // M78 print counter: everything extruded, lifetime
  // auto-reports
  private tempEveryS = 0;
  private sdEveryS = 0;
  private timers: NodeJS.Timeout[] = [];
  private lastTempReport = 0;
  private lastSdReport = 0;
  // SD card
  private sdSelected: string | null = null;
  private sdLines: string[] = [];
  private sdIndex = 0;
  private sdBytes = 0;
  private sdTotal = 0;
  private sdPrinting = false;
  /** SD printing runs moves in real (simulated) time: the next line waits for the last move. */
  private sdBusyUntilS = 0;
  private feedrateMmPerMin = 1500;
  private lastMoveS = 0;
  // waiting (M109/M190)
  private waitFor: { heater: 'hotend' | 'bed'; sinceMs: number; fromSd: boolean } | null = null;
  /** Commands read from the SD card are executed without answering the host. */
  private executingSd = false;
  private pending: string[] = [];
  // faults
  private checksumErrors = 0;
  private resendWithoutOk = false;
  private dropOks = 0;
  private silentUntil = 0;

  constructor(opts: PrinterSimOptions = {}) {
    super();
    this.opts = { dialect: 'marlin', timeScale: 1, autoreport: true, filamentDiameterMm: 1.75, densityGPerCm3: 1.24, keepaliveMs: 1000, ...opts, sdFiles: { 'demo.gcode': sampleGcode({ layers: 20, movesPerLayer: 40 }), ...opts.sdFiles } };
  }

  // ---- transport ----

  /** Connects the printer; opening the port toggles DTR, which resets the board. */
  attach(sink: (bytes: Uint8Array) => void): void {
    this.sink = sink;
    this.reset();
    this.timers.push(setInterval(() => this.tick(), 50));
  }

  detach(): void {
    this.sink = null;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  feed(chunk: Uint8Array): void {
    if (this.isSilent()) return;
    this.rx += Buffer.from(chunk).toString('latin1');
    let nl: number;
    while ((nl = this.rx.search(/[\r\n]/)) >= 0) {
      const line = this.rx.slice(0, nl).trim();
      this.rx = this.rx.slice(nl + 1);
      if (line) this.receive(line);
    }
    if (this.rx.length > 1024) this.rx = ''; // Marlin's buffer overflows too
  }

  // ---- fault injection ----

  /** The next `n` numbered lines arrive with a bad checksum. */
  injectChecksumErrors(n: number): void {
    this.checksumErrors += n;
  }

  /** Resend requests without the trailing `ok` (older Marlin). */
  setResendWithoutOk(on: boolean): void {
    this.resendWithoutOk = on;
  }

  /** Swallow the `ok` of the next `n` commands. */
  dropOk(n: number): void {
    this.dropOks += n;
  }

  silence(ms: number): void {
    this.silentUntil = Date.now() + ms;
  }

  /** The board resets (watchdog, brown-out, someone pressed reset): banner again, job lost. */
  reset(): void {
    this.integrate();
    this.resets++;
    this.lastLine = 0;
    this.heaters.hotend.target = this.heaters.bed.target = 0;
    this.sdPrinting = false;
    this.firstExtrudeS = null;
    this.waitFor = null;
    this.pending = [];
    this.halted = false;
    this.tempEveryS = this.sdEveryS = 0;
    this.relative = false;
    this.relativeE = null;
    this.eLogical = this.eLogical.map(() => 0);
    this.banner();
  }

  /** Starts printing a file from the SD card, as from the printer's own menu. */
  startSdPrint(name: string): void {
    if (!this.selectSdFile(name)) throw new Error(`no file ${name} on the simulated SD card`);
    this.sdPrinting = true;
    this.sdBusyUntilS = this.simNowS();
  }

  thermalRunaway(): void {
    this.halt('Error:Thermal Runaway, system stopped! Heater_ID: 0');
  }

  truth(): PrinterTruth {
    this.integrate();
    const totalExtrudedMm = this.highWater.reduce((a, b) => a + b, 0);
    return {
      extrudedMm: [...this.highWater],
      totalExtrudedMm,
      totalExtrudedG: (totalExtrudedMm * Math.PI * (this.opts.filamentDiameterMm / 2) ** 2 * this.opts.densityGPerCm3) / 1000,
      printS: this.firstExtrudeS === null ? 0 : this.lastExtrudeS - this.firstExtrudeS,
      linesExecuted: this.linesExecuted,
      resets: this.resets - 1,
      halted: this.halted,
    };
  }

  // ---- output ----

  private send(line: string): void {
    if (!this.sink || this.isSilent()) return;
    this.emit('line', line);
    this.sink(Buffer.from(line + '\n', 'latin1'));
  }

  private ok(extra = ''): void {
    if (this.executingSd) return;
    if (this.dropOks > 0) {
      this.dropOks--;
      return;
    }
    this.send(extra ? `ok ${extra}` : 'ok');
  }

  private isSilent(): boolean {
    return Date.now() < this.silentUntil;
  }

  private banner(): void {
    this.send('start');
    if (this.opts.dialect === 'prusa') {
      this.send('echo: 3.13.3-7094');
      this.send('echo: Last Updated: Feb 19 2024 12:39:48 | Author: (none, default config)');
    } else {
      this.send('echo:Marlin 2.1.2.1');
      this.send('echo: Last Updated: 2023-07-31 | Author: (none, default config)');
      this.send('echo:Compiled: Feb  4 2024');
    }
    this.send('echo: Free Memory: 2823  PlannerBufferBytes: 1232');
    this.send('echo:SD card ok');
  }

  private temperatureLine(): string {
    const { hotend: h, bed: b } = this.heaters;
    if (this.opts.dialect === 'prusa') {
      const f = (x: number) => x.toFixed(1);
      return `T:${f(h.actual)} /${f(h.target)} B:${f(b.actual)} /${f(b.target)} T0:${f(h.actual)} /${f(h.target)} @:${h.target ? 80 : 0} B@:${b.target ? 60 : 0} P:${f(AMBIENT + 3)} A:${f(AMBIENT + 8)}`;
    }
    const f = (x: number) => x.toFixed(2);
    return `T:${f(h.actual)} /${f(h.target)} B:${f(b.actual)} /${f(b.target)} @:${h.target ? 127 : 0} B@:${b.target ? 127 : 0}`;
  }

  private sdStatusLine(): string {
    return this.sdPrinting || (this.sdSelected && this.sdIndex > 0 && this.sdIndex < this.sdLines.length)
      ? `SD printing byte ${this.sdBytes}/${this.sdTotal}`
      : 'Not SD printing';
  }

  // ---- time ----

  private integrate(): void {
    const now = performance.now();
    const dt = ((now - this.physicsAt) / 1000) * this.opts.timeScale;
    this.physicsAt = now;
    for (const h of Object.values(this.heaters)) {
      // First-order approach to the target (or to ambient when off), time constant 20 s.
      const goal = h.target > 0 ? h.target : AMBIENT;
      h.actual = goal + (h.actual - goal) * Math.exp(-dt / 20);
    }
  }

  private tick(): void {
    if (!this.sink) return;
    this.integrate();
    const nowS = this.simNowS();
    if (this.tempEveryS > 0 && nowS - this.lastTempReport >= this.tempEveryS) {
      this.lastTempReport = nowS;
      this.send(' ' + this.temperatureLine());
    }
    if (this.sdEveryS > 0 && nowS - this.lastSdReport >= this.sdEveryS && (this.sdPrinting || this.sdSelected)) {
      this.lastSdReport = nowS;
      this.send(this.sdStatusLine());
    }
    if (this.waitFor) {
      const h = this.heaters[this.waitFor.heater];
      if (Math.abs(h.actual - h.target) < 1) {
        const { fromSd } = this.waitFor;
        this.waitFor = null;
        if (!fromSd) this.ok();
        for (const l of this.pending.splice(0)) this.receive(l);
      } else if (performance.now() - this.waitFor.sinceMs > this.opts.keepaliveMs) {
        this.waitFor.sinceMs = performance.now();
        this.send(' ' + this.temperatureLine() + ' W:?');
      }
    }
    while (this.sdPrinting && !this.halted && !this.waitFor && this.sdBusyUntilS <= nowS) {
      this.sdStep();
      this.sdBusyUntilS = Math.max(this.sdBusyUntilS, nowS - 1) + this.lastMoveS;
    }
  }

  private sdStep(): void {
    this.lastMoveS = 0;
    if (this.sdIndex >= this.sdLines.length) {
      this.sdPrinting = false;
      this.send('Done printing file');
      return;
    }
    const line = this.sdLines[this.sdIndex++]!;
    this.sdBytes += line.length + 1;
    this.executingSd = true;
    try {
      this.execute(line);
    } finally {
      this.executingSd = false;
    }
  }

  private simNowS(): number {
    return (performance.now() / 1000) * this.opts.timeScale;
  }

  private halt(cause: string | null): void {
    this.halted = true;
    this.sdPrinting = false;
    this.heaters.hotend.target = this.heaters.bed.target = 0;
    if (cause) this.send(cause);
    this.send('Error:Printer halted. kill() called!');
  }

  // ---- line protocol ----

  private receive(raw: string): void {
    if (this.halted) return;
    if (this.waitFor) {
      // M109 blocks the command queue; M112 still gets through the emergency parser.
      if (/\bM112\b/.test(raw)) return this.execute('M112');
      this.pending.push(raw);
      return;
    }
    let line = raw;
    const m = /^N(\d+)\s+(.*?)\*(\d+)\s*$/.exec(raw);
    if (m) {
      const n = Number(m[1]);
      let sum = 0;
      for (let i = 0, end = raw.lastIndexOf('*'); i < end; i++) sum ^= raw.charCodeAt(i);
      if (this.checksumErrors > 0 || sum !== Number(m[3])) {
        if (this.checksumErrors > 0) this.checksumErrors--;
        return this.requestResend(`Error:checksum mismatch, Last Line: ${this.lastLine}`);
      }
      if (n === this.lastLine && !/^M110\b/.test(m[2]!)) return this.ok(); // a repeat of the last line: dropped
      if (n !== this.lastLine + 1 && !/^M110\b/.test(m[2]!)) {
        return this.requestResend(`Error:Line Number is not Last Line Number+1, Last Line: ${this.lastLine}`);
      }
      this.lastLine = n;
      line = m[2]!;
    } else if (/^N\d+/.test(raw)) {
      return this.requestResend(`Error:No Checksum with line number, Last Line: ${this.lastLine}`);
    }
    this.execute(line);
  }

  private requestResend(error: string): void {
    this.send(error);
    this.send(`Resend: ${this.lastLine + 1}`);
    if (!this.resendWithoutOk) this.ok();
  }

  private execute(line: string): void {
    const code = line.split(';')[0]!.trim();
    const cmd = /^([GMT])(\d+)/.exec(code);
    if (!cmd) return this.ok();
    const word = `${cmd[1]}${Number(cmd[2])}`;
    const params = new Map<string, number>();
    for (const p of code.slice(cmd[0].length).matchAll(/([A-Z])\s*(-?\d*\.?\d+)/g)) params.set(p[1]!, Number(p[2]));
    const param = (k: string) => params.get(k);
    if (this.halted) return; // kill(): the firmware loops doing nothing until it is reset
    this.linesExecuted++;
    switch (word) {
      case 'M110':
        this.lastLine = param('N') ?? 0;
        return this.ok();
      case 'M115':
        return this.firmwareInfo();
      case 'M105':
        return this.ok(this.temperatureLine());
      case 'M155':
        this.tempEveryS = param('S') ?? 0;
        return this.ok();
      case 'M27': {
        const s = param('S');
        if (s !== undefined) this.sdEveryS = s;
        else this.send(this.sdStatusLine());
        return this.ok();
      }
      case 'M104':
      case 'M109':
      case 'M140':
      case 'M190': {
        const heater = word === 'M104' || word === 'M109' ? 'hotend' : 'bed';
        this.heaters[heater].target = param('S') ?? param('R') ?? 0;
        if (word === 'M109' || word === 'M190') {
          this.waitFor = { heater, sinceMs: performance.now(), fromSd: this.executingSd };
          return; // ok when the target is reached
        }
        return this.ok();
      }
      case 'G0':
      case 'G1':
      case 'G2':
      case 'G3':
        this.move(param);
        return this.ok();
      case 'G28':
        this.pos = { x: 0, y: 0, z: 0 };
        return this.ok();
      case 'G90':
        this.relative = false;
        this.relativeE = null;
        return this.ok();
      case 'G91':
        this.relative = true;
        this.relativeE = null;
        return this.ok();
      case 'M82':
        this.relativeE = false;
        return this.ok();
      case 'M83':
        this.relativeE = true;
        return this.ok();
      case 'G92': {
        const e = param('E');
        const anyAxis = ['X', 'Y', 'Z', 'E'].some((k) => param(k) !== undefined);
        if (e !== undefined) this.eLogical[this.tool] = e;
        else if (!anyAxis) this.eLogical[this.tool] = 0;
        return this.ok();
      }
      case 'M114': {
        const p = this.pos;
        this.send(`X:${p.x.toFixed(2)} Y:${p.y.toFixed(2)} Z:${p.z.toFixed(2)} E:${this.eLogical[this.tool]!.toFixed(2)} Count X:${Math.round(p.x * 80)} Y:${Math.round(p.y * 80)} Z:${Math.round(p.z * 400)}`);
        return this.ok();
      }
      case 'M78':
        this.send('Stats: Prints: 1, Finished: 0, Failed: 0');
        this.send(`Stats: Total time: 0m 0s, Longest job: 0m 0s`);
        this.send(`Stats: Filament used: ${(this.filamentUsedMm / 1000).toFixed(1)}m`);
        return this.ok();
      case 'M20':
        this.send('Begin file list');
        for (const [name, text] of Object.entries(this.opts.sdFiles)) this.send(`${name.toUpperCase()} ${text.length}`);
        this.send('End file list');
        return this.ok();
      case 'M23': {
        const name = code.slice(cmd[0].length).trim();
        if (this.selectSdFile(name)) {
          this.send(`File opened: ${this.sdSelected} Size: ${this.sdTotal}`);
          this.send('File selected');
        } else this.send(`open failed, File: ${name}.`);
        return this.ok();
      }
      case 'M24':
        if (this.sdSelected) this.sdPrinting = true;
        this.sdBusyUntilS = this.simNowS();
        return this.ok();
      case 'M25':
        this.sdPrinting = false;
        return this.ok();
      case 'M524': // Marlin 2
      case 'M603': // Prusa-Firmware: stop print
        this.sdPrinting = false;
        this.sdSelected = null;
        return this.ok();
      case 'M112':
        return this.halt(null);
      case 'M999':
        this.halted = false;
        this.send('Resend: ' + (this.lastLine + 1));
        return this.ok();
      default:
        if (word[0] === 'T') {
          this.tool = Number(word.slice(1));
          for (const axis of [this.motor, this.highWater, this.eLogical]) while (axis.length <= this.tool) axis.push(0);
        }
        return this.ok();
    }
  }

  private selectSdFile(name: string): boolean {
    const file = Object.keys(this.opts.sdFiles).find((f) => f.toLowerCase() === name.toLowerCase());
    if (!file) return false;
    this.sdSelected = file;
    this.sdLines = this.opts.sdFiles[file]!.split('\n');
    this.sdIndex = this.sdBytes = 0;
    this.sdTotal = this.opts.sdFiles[file]!.length;
    return true;
  }

  private move(param: (k: string) => number | undefined): void {
    const from = { ...this.pos };
    for (const axis of ['x', 'y', 'z'] as const) {
      const v = param(axis.toUpperCase());
      if (v !== undefined) this.pos[axis] = this.relative ? this.pos[axis] + v : v;
    }
    this.feedrateMmPerMin = param('F') ?? this.feedrateMmPerMin;
    const distance = Math.hypot(this.pos.x - from.x, this.pos.y - from.y, this.pos.z - from.z);
    const e = param('E');
    const relE = this.relativeE ?? this.relative;
    const t = this.tool;
    const delta = e === undefined ? 0 : relE ? e : e - this.eLogical[t]!;
    this.lastMoveS = Math.max(distance, Math.abs(delta)) / (this.feedrateMmPerMin / 60);
    if (e === undefined) return;
    this.eLogical[t] = this.eLogical[t]! + delta;
    this.motor[t] = this.motor[t]! + delta;
    if (delta > 0) this.filamentUsedMm += delta;
    if (delta !== 0) {
      this.lastExtrudeS = this.simNowS();
      this.firstExtrudeS ??= this.lastExtrudeS;
    }
    if (this.motor[t]! > this.highWater[t]!) this.highWater[t] = this.motor[t]!;
  }

  private firmwareInfo(): void {
    if (this.opts.dialect === 'prusa') {
      this.send('FIRMWARE_NAME:Prusa-Firmware 3.13.3 based on Marlin FIRMWARE_URL:https://github.com/prusa3d/Prusa-Firmware PROTOCOL_VERSION:1.0 MACHINE_TYPE:Prusa i3 MK3S EXTRUDER_COUNT:1 UUID:00000000-0000-0000-0000-000000000000');
    } else {
      this.send('FIRMWARE_NAME:Marlin 2.1.2.1 (Feb  4 2024 12:00:00) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin PROTOCOL_VERSION:1.0 MACHINE_TYPE:Simulated Printer EXTRUDER_COUNT:1 UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff');
    }
    const caps: [string, boolean][] = [
      ['SERIAL_XON_XOFF', false],
      ['BINARY_FILE_TRANSFER', false],
      ['EEPROM', true],
      ['AUTOREPORT_TEMP', this.opts.autoreport],
      ['PROGRESS', false],
      ['PRINT_JOB', true],
      ['AUTOLEVEL', true],
      ['Z_PROBE', true],
      ['EMERGENCY_PARSER', true],
      ['AUTOREPORT_SD_STATUS', this.opts.autoreport],
      ['THERMAL_PROTECTION', true],
    ];
    for (const [k, v] of caps) this.send(`Cap:${k}:${v ? 1 : 0}`);
    this.ok();
  }
}
