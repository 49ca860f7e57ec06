/**
 * A simulated Marlin 2.x (or Prusa MK3) printer on the far end of a serial line: banner,
 * numbered and checksummed lines with resend requests, M115 capabilities, temperatures that
 * approach their targets, M155/M27 auto-reports, an SD card, G-code executed with its own
 * E accounting (the ground truth), and fault injection. Transport-agnostic like the node
 * simulator: attach a byte sink, feed it bytes.
 *
 * Halted (thermal runaway, M112) it says and does nothing, and hears nothing but M999, which
 * resumes it, as Marlin's stopped state does; a board reset resumes it too.
 */
import { EventEmitter } from 'node:events';
import { Heaters, Motion } from './physical-model.js';
import { demoGcode } from './sample-gcode.js';
import { SdCard } from './sd-card.js';
import { bannerLines, checkLine, firmwareLines, positionLine, sdStatusLines, statsLines, temperatureLine, type PrinterDialect } from './serial-dialect.js';

export interface PrinterSimOptions {
  dialect?: PrinterDialect;
  /** Simulated seconds per real second (heating, SD printing, print time). */
  timeScale?: number;
  /** Files on the SD card: name → G-code text. The card always holds demo.gcode too. */
  sdFiles?: Record<string, string>;
  /**
   * Printing from the card: lines per simulated second, whatever the moves. 0: each move takes
   * its real time (distance / feedrate).
   */
  sdLinesPerS?: number;
  /** The firmware keeps print statistics (Marlin's PRINTCOUNTER): M78 answers; off, it is an unknown command. */
  printCounter?: boolean;
  /** Cap:AUTOREPORT_TEMP / Cap:AUTOREPORT_SD_STATUS. */
  autoreport?: boolean;
  filamentDiameterMm?: number;
  densityGPerCm3?: number;
  /** Real milliseconds between keep-alive lines (temperatures while M109 waits); Marlin uses one second. */
  keepaliveMs?: number;
  /**
   * Opening the port resets the board (DTR), as on most boards with a USB-serial chip. Off: the
   * board runs on when a host connects, as many boards with native USB do; no banner then.
   */
  resetOnOpen?: boolean;
}

export interface PrinterTruth {
  /** Filament the extruder motor really pushed past its highest point, per extruder, mm. */
  extrudedMm: number[];
  totalExtrudedMm: number;
  totalExtrudedG: number;
  /** Simulated seconds from the first to the last extruding move since the last reset. */
  printS: number;
  linesExecuted: number;
  /** The print counter (M78) now: every E move since power-on, signed, mm. */
  printCounterMm: number;
  /** Board resets since it was powered on (the first connection, where opening the port resets it). */
  resets: number;
  halted: boolean;
}

/** `line`: a line sent to the host; `sdLine`: the n-th line of the SD file has just been executed (faults can be injected at a line). */
export class PrinterSim extends EventEmitter<{ line: [string]; sdLine: [number] }> {
  readonly opts: Required<PrinterSimOptions>;
  private sink: ((bytes: Uint8Array) => void) | null = null;
  private rx = '';
  private lastLine = 0;
  private readonly heaters = new Heaters();
  private readonly motion = new Motion();
  private halted = false;
  private linesExecuted = 0;
  private resets: number;
  // auto-reports
  private tempEveryS = 0;
  private sdEveryS = 0;
  private timers: NodeJS.Timeout[] = [];
  private lastTempReport = 0;
  private lastSdReport = 0;
  // printing from the SD card
  private readonly sd: SdCard;
  /** Prusa-Firmware's statistics in EEPROM: saved when a print ends, not while it runs. */
  private savedCounterMm = 0;
  private sdPrinting = false;
  /** SD printing runs moves in real (simulated) time: the next line waits for the last move. */
  private sdBusyUntilS = 0;
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
    this.opts = { dialect: 'marlin', timeScale: 1, autoreport: true, filamentDiameterMm: 1.75, densityGPerCm3: 1.24, keepaliveMs: 1000, resetOnOpen: true, sdLinesPerS: 0, printCounter: true, ...opts, sdFiles: { 'demo.gcode': demoGcode(), ...opts.sdFiles } };
    this.sd = new SdCard(this.opts.sdFiles);
    this.resets = this.opts.resetOnOpen ? -1 : 0; // the first connection's reset is the power-on
  }

  // ---- transport ----

  /** Connects the printer; opening the port toggles DTR, which resets the board (unless `resetOnOpen` is off). */
  attach(sink: (bytes: Uint8Array) => void): void {
    this.sink = sink;
    this.rx = '';
    if (this.opts.resetOnOpen) this.reset();
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

  /** Whether the next host to open the port resets the board. */
  setResetOnOpen(on: boolean): void {
    this.opts.resetOnOpen = on;
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
    this.heaters.integrate(this.opts.timeScale);
    this.resets++;
    this.lastLine = 0;
    this.heaters.off();
    this.sdPrinting = false;
    this.waitFor = null;
    this.pending = [];
    this.halted = false;
    this.tempEveryS = this.sdEveryS = 0;
    this.motion.reset();
    for (const line of bannerLines(this.opts.dialect)) this.send(line);
  }

  /** Starts printing a file from the SD card, as from the printer's own menu. */
  startSdPrint(name: string): void {
    if (!this.sd.select(name)) throw new Error(`no file ${name} on the simulated SD card`);
    this.startPrintJob();
  }

  /** Stop print, from the printer's own menu: the file is closed, the print counter saved. */
  stopSdPrint(): void {
    if (!this.sdPrinting && !this.sd.midFile) throw new Error('the simulated printer is not printing from its SD card');
    this.endPrintJob();
    this.sd.selected = null;
  }

  /** The card is pulled out mid-print (or fails): Marlin releases it and the print stops. */
  releaseSdCard(): void {
    this.sdPrinting = false;
    this.sd.release();
    this.send('echo:SD card released');
  }

  thermalRunaway(): void {
    this.halt('Error:Thermal Runaway, system stopped! Heater_ID: 0');
  }

  truth(): PrinterTruth {
    this.heaters.integrate(this.opts.timeScale);
    const m = this.motion;
    const totalExtrudedMm = m.highWater.reduce((a, b) => a + b, 0);
    return {
      extrudedMm: [...m.highWater],
      totalExtrudedMm,
      totalExtrudedG: (totalExtrudedMm * Math.PI * (this.opts.filamentDiameterMm / 2) ** 2 * this.opts.densityGPerCm3) / 1000,
      printS: m.firstExtrudeS === null ? 0 : m.lastExtrudeS - m.firstExtrudeS,
      linesExecuted: this.linesExecuted,
      printCounterMm: m.filamentUsedMm,
      resets: this.resets,
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

  private temperatureLine(): string {
    return temperatureLine(this.opts.dialect, this.heaters);
  }

  private sdStatusLines(): string[] {
    return sdStatusLines(this.opts.dialect, this.sdPrinting || this.sd.midFile ? { file: this.sd.selected!, byte: this.sd.byte, total: this.sd.total } : null);
  }

  // ---- time ----

  private tick(): void {
    if (!this.sink) return;
    this.heaters.integrate(this.opts.timeScale);
    if (this.halted) return;
    const nowS = this.simNowS();
    if (this.tempEveryS > 0 && nowS - this.lastTempReport >= this.tempEveryS) {
      this.lastTempReport = nowS;
      this.send(' ' + this.temperatureLine());
    }
    // Marlin reports every interval, printing or not
    if (this.sdEveryS > 0 && nowS - this.lastSdReport >= this.sdEveryS) {
      this.lastSdReport = nowS;
      for (const l of this.sdStatusLines()) this.send(l);
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
    const lineS = this.opts.sdLinesPerS > 0 ? 1 / this.opts.sdLinesPerS : 0;
    while (this.sdPrinting && !this.waitFor && this.sdBusyUntilS <= nowS) {
      this.sdStep();
      this.sdBusyUntilS = Math.max(this.sdBusyUntilS, nowS - 1) + (lineS || this.lastMoveS);
    }
  }

  private sdStep(): void {
    this.lastMoveS = 0;
    const line = this.sd.nextLine();
    if (line === null) {
      this.endPrintJob();
      this.send('Done printing file');
      return;
    }
    this.executingSd = true;
    try {
      this.execute(line);
    } finally {
      this.executingSd = false;
    }
    this.emit('sdLine', this.sd.linesRead);
  }

  private startPrintJob(): void {
    this.sdPrinting = true;
    this.sdBusyUntilS = this.simNowS();
  }

  /** The print job ends (done or stopped): Prusa-Firmware saves its statistics then. */
  private endPrintJob(): void {
    this.sdPrinting = false;
    this.savedCounterMm = this.motion.filamentUsedMm;
  }

  private simNowS(): number {
    return (performance.now() / 1000) * this.opts.timeScale;
  }

  private halt(cause: string | null): void {
    this.halted = true;
    this.sdPrinting = false;
    this.waitFor = null;
    this.pending = [];
    this.heaters.off();
    if (cause) this.send(cause);
    this.send('Error:Printer halted. kill() called!');
  }

  // ---- line protocol ----

  private receive(raw: string): void {
    if (this.halted) return this.receiveHalted(raw);
    if (this.waitFor) {
      // M109 blocks the command queue; M112 still gets through the emergency parser.
      if (/\bM112\b/.test(raw)) return this.execute('M112');
      this.pending.push(raw);
      return;
    }
    const check = checkLine(raw, this.lastLine, this.checksumErrors > 0);
    if (check.kind === 'bad-checksum' && this.checksumErrors > 0) this.checksumErrors--;
    if (check.kind === 'repeat') return this.ok();
    if (check.kind !== 'command') return this.requestResend(check.error);
    if (check.n !== null) this.lastLine = check.n;
    this.execute(check.line);
  }

  /** Halted: a line is read (numbered ones checked as usual) and dropped without an answer, unless it is M999. */
  private receiveHalted(raw: string): void {
    const check = checkLine(raw, this.lastLine, false);
    if (check.kind !== 'command' || !/^M999\b/.test(check.line)) return;
    if (check.n !== null) this.lastLine = check.n;
    this.halted = false;
    this.execute(check.line);
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
    this.linesExecuted++;
    switch (word) {
      case 'M110':
        this.lastLine = param('N') ?? 0;
        return this.ok();
      case 'M115':
        for (const l of firmwareLines(this.opts.dialect, this.opts.autoreport)) this.send(l);
        return this.ok();
      case 'M105':
        return this.ok(this.temperatureLine());
      case 'M155':
        // the first report comes one interval later, as in Marlin
        this.tempEveryS = param('S') ?? 0;
        this.lastTempReport = this.simNowS();
        return this.ok();
      case 'M27': {
        const s = param('S');
        if (/\bC\b/.test(code) && this.opts.dialect === 'marlin') this.send(`Current file: ${this.sd.selected ? `${this.sd.dosName(this.sd.selected)} ${this.sd.selected}` : '(no file)'}`);
        else if (s !== undefined) this.sdEveryS = s;
        else for (const l of this.sdStatusLines()) this.send(l);
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
        this.lastMoveS = this.motion.move(param, this.simNowS());
        return this.ok();
      case 'G28':
        this.motion.pos = { x: 0, y: 0, z: 0 };
        return this.ok();
      case 'G90':
      case 'G91':
        this.motion.relative = word === 'G91';
        this.motion.relativeE = null;
        return this.ok();
      case 'M82':
      case 'M83':
        this.motion.relativeE = word === 'M83';
        return this.ok();
      case 'G92': {
        const e = param('E');
        const anyAxis = ['X', 'Y', 'Z', 'E'].some((k) => param(k) !== undefined);
        if (e !== undefined) this.motion.eLogical[this.motion.tool] = e;
        else if (!anyAxis) this.motion.eLogical[this.motion.tool] = 0;
        return this.ok();
      }
      case 'M114':
        this.send(positionLine(this.motion.pos, this.motion.eLogical[this.motion.tool]!));
        return this.ok();
      case 'M78':
        if (!this.opts.printCounter) {
          this.send('echo:Unknown command: "M78"');
          return this.ok();
        }
        for (const l of statsLines(this.opts.dialect, this.opts.dialect === 'prusa' ? this.savedCounterMm : this.motion.filamentUsedMm)) this.send(l);
        return this.ok();
      case 'M20': {
        const long = /\bL\b/.test(code);
        this.send('Begin file list');
        if (this.sd.mounted) for (const [name, text] of Object.entries(this.sd.files)) this.send(`${this.sd.dosName(name)} ${Buffer.byteLength(text, 'latin1')}${long ? ` ${name}` : ''}`);
        this.send('End file list');
        return this.ok();
      }
      case 'M22':
        this.releaseSdCard();
        return this.ok();
      case 'M23': {
        const name = code.slice(cmd[0].length).trim();
        if (this.sd.select(name)) {
          this.send(`File opened: ${this.sd.selected} Size: ${this.sd.total}`);
          this.send('File selected');
        } else this.send(`open failed, File: ${name}.`);
        return this.ok();
      }
      case 'M24':
        if (this.sd.selected) this.startPrintJob();
        return this.ok();
      case 'M25':
        this.sdPrinting = false;
        return this.ok();
      case 'M524': // Marlin 2
      case 'M603': // Prusa-Firmware: stop print
        if (this.sdPrinting || this.sd.midFile) this.endPrintJob();
        this.sd.selected = null;
        return this.ok();
      case 'M112':
        return this.halt(null);
      case 'M999':
        // Marlin flushes its input and asks for the line after the last it took
        this.send('Resend: ' + (this.lastLine + 1));
        return this.ok();
      default:
        if (word[0] === 'T') this.motion.selectTool(Number(word.slice(1)));
        return this.ok();
    }
  }
}
