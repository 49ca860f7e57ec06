/**
 * A simulated Marlin 2.x (or Prusa MK3) printer on the far end of a serial line: banner,
 * numbered and checksummed lines with resend requests, M115 capabilities, temperatures that
 * approach their targets, M155/M27 auto-reports, an SD card, G-code executed with its own
 * E accounting (the ground truth), and fault injection. Transport-agnostic like the node
 * simulator: attach a byte sink, feed it bytes.
 *
 * Lines pass through Marlin's buffers: a serial receive buffer of RX_BUFFER_SIZE bytes (what
 * does not fit is dropped, as the UART's ring buffer drops it), a command queue of BUFSIZE
 * lines filled from it while it has room, and a planner of BLOCK_BUFFER_SIZE moves that take
 * their time (at the time scale): a move waits for a free block before it is acknowledged.
 * A line error empties the receive buffer before the resend request, as Marlin's does. With
 * ADVANCED_OK, oks say the line, the free planner blocks and the free command slots.
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
  /** The serial receive buffer, bytes (Marlin's RX_BUFFER_SIZE, 128 on most boards); it holds one byte less. */
  rxBufferBytes?: number;
  /** Command queue slots (Marlin's BUFSIZE). */
  bufsize?: number;
  /** Planner blocks (Marlin's BLOCK_BUFFER_SIZE). */
  plannerBlocks?: number;
  /** Cap:ADVANCED_OK:1, and oks as `ok N<line> P<free blocks> B<free slots>`. */
  advancedOk?: boolean;
}

export interface PrinterTruth {
  /** Filament the extruder motor really pushed past its highest point, per extruder, mm. */
  extrudedMm: number[];
  totalExtrudedMm: number;
  totalExtrudedG: number;
  /** Simulated seconds from the first to the last extruding move since the last reset. */
  printS: number;
  linesExecuted: number;
  /** Moves (G0–G3) executed since power-on: a line run twice or never shows here. */
  movesExecuted: number;
  /** The print counter (M78) now: every E move since power-on, signed, mm. */
  printCounterMm: number;
  /** Board resets since it was powered on (the first connection, where opening the port resets it). */
  resets: number;
  halted: boolean;
  /** Bytes dropped because the receive buffer was full, since power-on. */
  rxOverflowBytes: number;
  /** The most bytes the receive buffer held at once. */
  rxHighWater: number;
  /** Line errors (checksum, line number) the firmware answered with a resend request. */
  lineErrors: number;
}

/** `line`: a line sent to the host; `sdLine`: the n-th line of the SD file has just been executed (faults can be injected at a line). */
export class PrinterSim extends EventEmitter<{ line: [string]; sdLine: [number]; rxOverflow: [number] }> {
  readonly opts: Required<PrinterSimOptions>;
  private sink: ((bytes: Uint8Array) => void) | null = null;
  private rx = '';
  private lastLine = 0;
  private readonly heaters = new Heaters();
  private readonly motion = new Motion();
  private halted = false;
  private linesExecuted = 0;
  private movesExecuted = 0;
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
  private waitFor: { heater: 'hotend' | 'bed'; sinceMs: number; fromSd: boolean; n: number | null } | null = null;
  /** Commands read from the SD card are executed without answering the host. */
  private executingSd = false;
  /** Marlin's command queue (BUFSIZE): lines read and checked, not executed yet. */
  private queue: { line: string; n: number | null }[] = [];
  /** The planner: when each move in it ends, simulated seconds. */
  private planner: number[] = [];
  private plannerTimer: NodeJS.Timeout | null = null;
  /** The line being executed, for its ok (ADVANCED_OK says it). */
  private currentN: number | null = null;
  private servicing = false;
  private rxOverflowBytes = 0;
  private rxHighWater = 0;
  private lineErrors = 0;
  /** Line noise: every n-th numbered line arrives with one byte changed (0: none). */
  private noiseEvery = 0;
  private noiseCount = 0;
  // faults
  private checksumErrors = 0;
  private resendWithoutOk = false;
  private dropOks = 0;
  private silentUntil = 0;

  constructor(opts: PrinterSimOptions = {}) {
    super();
    this.opts = { dialect: 'marlin', timeScale: 1, autoreport: true, filamentDiameterMm: 1.75, densityGPerCm3: 1.24, keepaliveMs: 1000, resetOnOpen: true, sdLinesPerS: 0, printCounter: true, rxBufferBytes: 128, bufsize: 4, plannerBlocks: 16, advancedOk: false, ...opts, sdFiles: { 'demo.gcode': demoGcode(), ...opts.sdFiles } };
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
    if (this.plannerTimer) clearTimeout(this.plannerTimer);
    this.plannerTimer = null;
  }

  /** Bytes from the host into the receive buffer; what does not fit is lost. */
  feed(chunk: Uint8Array): void {
    if (this.isSilent()) return;
    const text = Buffer.from(chunk).toString('latin1');
    // The emergency parser reads M112 as the bytes arrive, whatever the queue is doing.
    if (!this.halted && (this.waitFor || this.plannerTimer) && /\bM112\b/.test(text)) {
      this.execute('M112');
      return;
    }
    const room = this.opts.rxBufferBytes - 1 - this.rx.length;
    if (text.length > room) {
      this.rxOverflowBytes += text.length - Math.max(0, room);
      this.emit('rxOverflow', text.length - Math.max(0, room));
    }
    this.rx += text.slice(0, Math.max(0, room));
    this.rxHighWater = Math.max(this.rxHighWater, this.rx.length);
    this.service();
  }

  /**
   * Marlin's main loop: the command queue is filled from the receive buffer while it has room
   * (each line checked as it is read), then its oldest command runs, unless the firmware is
   * waiting (M109, a full planner).
   */
  private service(): void {
    if (this.servicing) return;
    this.servicing = true;
    try {
      for (;;) {
        while (this.halted || this.queue.length < this.opts.bufsize) {
          const nl = this.rx.search(/[\r\n]/);
          if (nl < 0) break;
          const line = this.rx.slice(0, nl).trim();
          this.rx = this.rx.slice(nl + 1);
          if (line) this.read(line);
        }
        if (this.halted || this.waitFor || this.plannerTimer || this.queue.length === 0) return;
        const next = this.queue[0]!;
        if (this.isMove(next.line) && !this.plannerRoom()) return;
        this.queue.shift();
        this.currentN = next.n;
        this.execute(next.line);
        this.currentN = null;
      }
    } finally {
      this.servicing = false;
    }
  }

  private isMove(line: string): boolean {
    return /^G[0-3](?!\d)/.test(line);
  }

  /** Frees the blocks whose moves have ended; full, the queue waits for the next to end. */
  private plannerRoom(): boolean {
    const now = this.simNowS();
    while (this.planner.length && this.planner[0]! <= now) this.planner.shift();
    if (this.planner.length < this.opts.plannerBlocks) return true;
    const ms = Math.max(1, ((this.planner[0]! - now) / this.opts.timeScale) * 1000);
    this.plannerTimer = setTimeout(() => {
      this.plannerTimer = null;
      this.service();
    }, ms);
    return false;
  }

  /** A move of `seconds` joins the planner, after the moves before it. */
  private plan(seconds: number): void {
    const now = this.simNowS();
    const start = Math.max(now, this.planner.at(-1) ?? now);
    this.planner.push(start + seconds);
  }

  // ---- fault injection ----

  /** The next `n` numbered lines arrive with a bad checksum. */
  injectChecksumErrors(n: number): void {
    this.checksumErrors += n;
  }

  /** Line noise: every n-th numbered line from now arrives with a byte changed (0: none). */
  setLineNoise(every: number): void {
    this.noiseEvery = every;
    this.noiseCount = 0;
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
    this.clearBuffers();
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
      movesExecuted: this.movesExecuted,
      printCounterMm: m.filamentUsedMm,
      resets: this.resets,
      halted: this.halted,
      rxOverflowBytes: this.rxOverflowBytes,
      rxHighWater: this.rxHighWater,
      lineErrors: this.lineErrors,
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
    if (extra) return this.send(`ok ${extra}`);
    if (!this.opts.advancedOk) return this.send('ok');
    // Marlin's ok_to_send: the line's number when it had one, free planner blocks, free queue slots (the running command still holds its own)
    const now = this.simNowS();
    const busy = this.planner.filter((t) => t > now).length;
    this.send(`ok${this.currentN === null ? '' : ` N${this.currentN}`} P${this.opts.plannerBlocks - busy} B${this.opts.bufsize - this.queue.length - 1}`);
  }

  /** A line error's ok, and a repeated line's: plain. */
  private plainOk(): void {
    if (this.executingSd) return;
    if (this.dropOks > 0) {
      this.dropOks--;
      return;
    }
    this.send('ok');
  }

  /** Everything read and not run yet is lost (a reset, a halt). */
  private clearBuffers(): void {
    this.rx = '';
    this.queue = [];
    this.planner = [];
    if (this.plannerTimer) clearTimeout(this.plannerTimer);
    this.plannerTimer = null;
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
        const { fromSd, n } = this.waitFor;
        this.waitFor = null;
        this.currentN = n;
        if (!fromSd) this.ok();
        this.currentN = null;
        this.service();
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
    this.clearBuffers();
    this.heaters.off();
    if (cause) this.send(cause);
    this.send('Error:Printer halted. kill() called!');
  }

  // ---- line protocol ----

  /** A line read from the receive buffer: checked, then queued (M110 sets the line number as it is read). */
  private read(raw: string): void {
    if (this.halted) return this.receiveHalted(raw);
    if (this.noiseEvery > 0 && /^N\d+/.test(raw) && ++this.noiseCount % this.noiseEvery === 0) raw = raw.slice(0, -2) + String.fromCharCode(raw.charCodeAt(raw.length - 2) ^ 0x04) + raw.slice(-1);
    const check = checkLine(raw, this.lastLine, this.checksumErrors > 0);
    if (check.kind === 'bad-checksum' && this.checksumErrors > 0) this.checksumErrors--;
    if (check.kind === 'repeat') return this.plainOk();
    if (check.kind !== 'command') return this.requestResend(check.error);
    if (check.n !== null) this.lastLine = check.n;
    const m110 = /^M110\b.*?N\s*(-?\d+)/.exec(check.line);
    if (m110) this.lastLine = Number(m110[1]);
    this.queue.push({ line: check.line, n: check.n });
  }

  /** Halted: a line is read (numbered ones checked as usual) and dropped without an answer, unless it is M999. */
  private receiveHalted(raw: string): void {
    const check = checkLine(raw, this.lastLine, false);
    if (check.kind !== 'command' || !/^M999\b/.test(check.line)) return;
    if (check.n !== null) this.lastLine = check.n;
    this.halted = false;
    this.execute(check.line);
  }

  /** Marlin's gcode_line_error: the error, the receive buffer emptied, the resend request and a plain ok. */
  private requestResend(error: string): void {
    this.lineErrors++;
    this.send(error);
    this.rx = '';
    this.send(`Resend: ${this.lastLine + 1}`);
    if (!this.resendWithoutOk) this.plainOk();
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
      case 'M110': // the line number was set as the line was read
        return this.ok();
      case 'M115':
        for (const l of firmwareLines(this.opts.dialect, this.opts.autoreport, this.opts.advancedOk)) this.send(l);
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
          this.waitFor = { heater, sinceMs: performance.now(), fromSd: this.executingSd, n: this.currentN };
          return; // ok when the target is reached
        }
        return this.ok();
      }
      case 'G0':
      case 'G1':
      case 'G2':
      case 'G3':
        this.movesExecuted++;
        this.lastMoveS = this.motion.move(param, this.simNowS());
        if (!this.executingSd) this.plan(this.lastMoveS);
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
