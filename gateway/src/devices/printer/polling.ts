/**
 * Keeping temperatures, SD progress and, during an SD print, the extruder position fresh. The
 * firmware reports what it can by itself; the rest is polled, one command at a time and only
 * when the line is idle, so polling never delays a print job's next line. The temperatures are
 * asked for once at the start, so they are known before the first report.
 */
import type { PrinterDialect } from './dialects.js';
import type { LineProtocol } from './line-protocol.js';

/** The firmware reports this by itself: the dialect has the command and M115 offered it. */
export function autoreports(dialect: PrinterDialect, capabilities: Readonly<Record<string, boolean>>, what: 'temperatures' | 'sd'): boolean {
  return what === 'temperatures'
    ? dialect.gcode.autoreportTemperatures !== null && capabilities.AUTOREPORT_TEMP === true
    : dialect.gcode.autoreportSdStatus !== null && capabilities.AUTOREPORT_SD_STATUS === true;
}

export interface PollingOptions {
  /** Auto-report interval, or polling interval where the firmware cannot auto-report. */
  intervalS: number;
  /** SD mode: how often the extruder position is read. */
  positionMs: number;
  /** Seconds between the firmware's `busy:` lines while a long command runs (G28, G29), where it has them. */
  keepaliveS: number;
}

export class StatusPolling {
  private capabilities: Readonly<Record<string, boolean>> = {};
  private pollTimer: NodeJS.Timeout | null = null;
  private positionTimer: NodeJS.Timeout | null = null;
  private positionPending = false;

  constructor(
    private readonly dialect: PrinterDialect,
    private readonly protocol: LineProtocol,
    private readonly opts: PollingOptions,
    private readonly isReady: () => boolean,
    /** SD mode: what to read often (the extruder position, the print counter); nothing otherwise. */
    private readonly sdPolls: () => string[],
    /** What else to read every interval (the print counter while idle). */
    private readonly intervalPolls: () => string[],
  ) {}

  /** After the handshake: asks for the temperatures now, for the auto-reports the firmware offered, and polls for the rest. */
  start(capabilities: Readonly<Record<string, boolean>>): void {
    this.capabilities = capabilities;
    const interval = this.opts.intervalS;
    const g = this.dialect.gcode;
    this.protocol.send({ line: g.temperatures });
    // a print already running from the card is seen at once, before the first report
    this.protocol.send({ line: g.sdStatus });
    for (const line of this.intervalPolls()) this.protocol.send({ line });
    if (g.hostKeepalive) this.protocol.send({ line: g.hostKeepalive(this.opts.keepaliveS) });
    if (autoreports(this.dialect, capabilities, 'temperatures')) this.protocol.send({ line: g.autoreportTemperatures!(interval) });
    if (autoreports(this.dialect, capabilities, 'sd')) this.protocol.send({ line: g.autoreportSdStatus!(interval) });
    this.pollTimer = setInterval(() => this.poll(), interval * 1000);
    this.positionPending = false;
    this.positionTimer = setInterval(() => this.pollPosition(), this.opts.positionMs);
  }

  stop(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.positionTimer) clearInterval(this.positionTimer);
    this.pollTimer = this.positionTimer = null;
  }

  private poll(): void {
    if (!this.isReady() || !this.protocol.idle) return;
    if (!autoreports(this.dialect, this.capabilities, 'temperatures')) this.protocol.send({ line: this.dialect.gcode.temperatures });
    if (!autoreports(this.dialect, this.capabilities, 'sd')) this.protocol.send({ line: this.dialect.gcode.sdStatus });
    for (const line of this.intervalPolls()) this.protocol.send({ line });
  }

  /** SD mode: the extruder position (and the print counter), read often, one round at a time. */
  private pollPosition(): void {
    if (!this.isReady() || this.positionPending) return;
    const lines = this.sdPolls();
    if (lines.length === 0) return;
    this.positionPending = true;
    lines.forEach((line, i) => this.protocol.send({ line, ...(i === lines.length - 1 && { onAck: () => (this.positionPending = false) }) }));
  }
}
