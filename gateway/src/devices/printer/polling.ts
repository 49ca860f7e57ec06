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
    private readonly isFollowingSd: () => boolean,
  ) {}

  /** After the handshake: asks for the temperatures now, for the auto-reports the firmware offered, and polls for the rest. */
  start(capabilities: Readonly<Record<string, boolean>>): void {
    this.capabilities = capabilities;
    const interval = this.opts.intervalS;
    const g = this.dialect.gcode;
    this.protocol.send({ line: g.temperatures });
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
  }

  /** SD mode: the extruder position, read often, one request at a time. */
  private pollPosition(): void {
    if (!this.isReady() || !this.isFollowingSd() || this.positionPending) return;
    this.positionPending = true;
    this.protocol.send({ line: this.dialect.gcode.position, onAck: () => (this.positionPending = false) });
  }
}
