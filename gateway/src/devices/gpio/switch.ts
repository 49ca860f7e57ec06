/**
 * A tool switch on the Pi's own GPIO pins: a relay output, an optional feedback contact,
 * and optional green and red LEDs and a buzzer for feedback at the tool.
 */
import { EventEmitter } from 'node:events';
import type { Journal } from '../../journal/journal.js';
import type { Logger } from '../../log.js';
import type { DeviceHealth } from '../device.js';
import type { Indication, RelayState, SwitchReason, ToolSwitch } from '../tool-io.js';
import { canExport, checkLines, globalNumber, hasSysfsGpio, resolveChip, SYSFS_GPIO, type GpioChip } from './chip.js';
import { PIN_ROLES, type GpioSwitchConfig, type PinRole } from './config.js';
import { pinFactory, SimulatedBoard, type Pin, type PinFactory } from './pins.js';

/** Longest wait for the feedback contact to follow a command (relays take 5–20 ms, contactors up to ~100 ms). */
export const FEEDBACK_SETTLE_MS = 250;
/** Contact bounce is ignored until the input has been stable this long. */
export const FEEDBACK_DEBOUNCE_MS = 20;
export const SHORT_BEEP_MS = 100;
export const LONG_BEEP_MS = 1000;
/** Half periods: warning blinks at 2 Hz, info at 1 Hz. */
const WARNING_BLINK_MS = 250;
const INFO_BLINK_MS = 500;
const WARNING_BEEP_EVERY_MS = 1000;

const INDICATORS = ['ledGreen', 'ledRed', 'buzzer'] as const satisfies readonly PinRole[];

export interface GpioSwitchOptions {
  /** Where the sysfs GPIO interface is; tests point it at a fake tree. */
  sysfsRoot?: string;
  /** Longest wait for the feedback contact after a command. */
  settleMs?: number;
}

export interface GpioSwitchEvents {
  relay: [RelayState];
}

interface ContactWait {
  want: boolean;
  timer: NodeJS.Timeout;
  done: () => void;
}

export class GpioSwitch extends EventEmitter<GpioSwitchEvents> implements ToolSwitch {
  readonly kind = 'gpio';
  readonly switchesTools = true;
  /** The in-memory pins when `simulated`: tests and demos act on the world through it. */
  readonly simulation: SimulatedBoard | null;
  private readonly log: Logger;
  private chip: GpioChip | null = null;
  private pins: Partial<Record<PinRole, Pin>> = {};
  private relay: RelayState = { requested: false, sensed: null };
  private running = false;
  private since = new Date();
  private lastSeen: Date | null = null;
  /** setRelay commands run one after the other, each reporting what the contact did. */
  private commands: Promise<void> = Promise.resolve();
  private contactWait: ContactWait | null = null;
  private readonly timeouts = new Set<NodeJS.Timeout>();
  private readonly intervals = new Set<NodeJS.Timeout>();
  private indication: { pattern: Indication; text: string; until: string } | null = null;

  constructor(
    private readonly cfg: GpioSwitchConfig,
    private readonly journal: Journal,
    log: Logger,
    private readonly opts: GpioSwitchOptions = {},
  ) {
    super();
    this.log = log.child({ device: cfg.id });
    this.simulation = cfg.simulated ? new SimulatedBoard() : null;
  }

  get id(): string {
    return this.cfg.id;
  }

  /** Known once the pins are exported: the relay line is read back at start. */
  get relayKnown(): boolean {
    return this.running;
  }

  get relayState(): RelayState {
    return { ...this.relay };
  }

  private get root(): string {
    return this.opts.sysfsRoot ?? SYSFS_GPIO;
  }

  /** Resolves the chip and exports the lines. A relay line left exported as an output by a previous run keeps its state. */
  start(): void {
    if (this.running) return;
    this.chip = this.simulation ? null : this.findChip();
    this.pins = this.openPins(pinFactory(this.simulation, this.chip));
    const feedback = this.pins.feedback;
    this.relay = { requested: this.pins.relay!.read(), sensed: feedback ? feedback.read() : null };
    feedback?.watch(
      (on) => this.onContact(on),
      (err) => this.log.error({ err }, 'watching the relay feedback contact failed'),
    );
    this.running = true;
    this.since = new Date();
    this.lastSeen = this.since;
    this.journal.record('device.connected', this.cfg.id, { target: this.target(), simulated: this.cfg.simulated, chip: this.chip, pins: this.pinInfo(), relay: this.relay });
    this.log.info({ chip: this.chip, relay: this.relay }, `GPIO switch ready on ${this.target()}`);
    if (this.relay.requested) this.log.warn('the relay was left on by a previous run; it stays on until told otherwise');
  }

  /** Stops indications and releases the lines. The relay stays as it is: switching it off is the caller's decision. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.quiet();
    this.running = false;
    if (this.contactWait) {
      clearTimeout(this.contactWait.timer);
      this.contactWait.done();
    }
    this.simulation?.dispose();
    for (const role of PIN_ROLES) {
      const pin = this.pins[role];
      if (!pin) continue;
      try {
        if (role === 'relay') pin.release();
        else pin.unexport();
      } catch (err) {
        this.log.warn({ err, role }, `releasing pins.${role} failed`);
      }
    }
    this.pins = {};
    this.since = new Date();
    await this.commands;
  }

  /** Drives the relay; resolves once the feedback contact followed (or did not within the settle time) and `relay` was emitted. */
  setRelay(on: boolean, reason: SwitchReason): Promise<void> {
    const done = this.commands.then(() => this.switchRelay(on, reason));
    this.commands = done.catch(() => {});
    return done;
  }

  /** Shows a pattern on the LEDs and buzzer for `durationMs`, replacing any running one. There is no display: `text` is logged. */
  indicate(pattern: Indication, durationMs: number, text = ''): Promise<void> {
    if (!this.running) return Promise.reject(this.error('not started'));
    this.quiet();
    if (pattern === 'off') return Promise.resolve();
    this.indication = { pattern, text, until: new Date(Date.now() + durationMs).toISOString() };
    this.log.debug({ pattern, durationMs, text }, 'indication');
    this.play(pattern);
    this.after(durationMs, () => this.quiet());
    return Promise.resolve();
  }

  health(): DeviceHealth {
    return {
      id: this.cfg.id,
      kind: this.kind,
      name: this.cfg.name ?? this.cfg.id,
      state: this.running ? 'online' : 'offline',
      lastSeen: this.lastSeen?.toISOString() ?? null,
      since: this.since.toISOString(),
      detail: {
        target: this.target(),
        simulated: this.cfg.simulated,
        chip: this.chip,
        pins: this.pinInfo(),
        relay: this.relayState,
        indication: this.indication,
      },
    };
  }

  // ---- start ----

  private error(what: string): Error {
    return new Error(`gpio device '${this.cfg.id}': ${what}`);
  }

  private findChip(): GpioChip {
    const root = this.root;
    if (!hasSysfsGpio(root)) {
      throw this.error(
        `this machine has no GPIO (${root} not found); on a Pi enable the kernel's sysfs GPIO interface (CONFIG_GPIO_SYSFS, on in Raspberry Pi OS) ` +
          `and give a container ${root}; elsewhere set simulated: true`,
      );
    }
    let chip: GpioChip;
    try {
      chip = resolveChip(root, this.cfg.chip);
      checkLines(
        chip,
        PIN_ROLES.flatMap((role) => (this.cfg.pins[role] ? [{ role, line: this.cfg.pins[role].line }] : [])),
      );
    } catch (err) {
      throw this.error((err as Error).message);
    }
    if (!canExport(root)) throw this.error(`no permission to write ${root}/export; run the gateway as a user in the gpio group`);
    return chip;
  }

  private openPins(factory: PinFactory): Partial<Record<PinRole, Pin>> {
    const opened: Partial<Record<PinRole, Pin>> = {};
    for (const role of PIN_ROLES) {
      const p = this.cfg.pins[role];
      if (!p) continue;
      try {
        opened[role] =
          role === 'feedback'
            ? factory.open({ role, line: p.line, activeLow: p.activeLow, direction: 'in', debounceMs: FEEDBACK_DEBOUNCE_MS })
            : factory.open({ role, line: p.line, activeLow: p.activeLow, direction: 'out', keep: role === 'relay' });
      } catch (err) {
        for (const [r, pin] of Object.entries(opened)) {
          try {
            if (r === 'relay') pin.release();
            else pin.unexport();
          } catch {
            // already failing; the first error is the one worth reporting
          }
        }
        const global = this.chip ? `, global ${globalNumber(this.chip, p.line)}` : '';
        throw this.error(`cannot set up pins.${role} (line ${p.line}${global}): ${(err as Error).message}`);
      }
    }
    return opened;
  }

  private target(): string {
    return this.chip ? `${this.chip.label} (base ${this.chip.base})` : 'simulated GPIO';
  }

  private pinInfo(): Partial<Record<PinRole, { line: number; activeLow: boolean; global: number | null }>> {
    const info: Partial<Record<PinRole, { line: number; activeLow: boolean; global: number | null }>> = {};
    for (const role of PIN_ROLES) {
      const p = this.cfg.pins[role];
      if (p) info[role] = { line: p.line, activeLow: p.activeLow, global: this.chip ? globalNumber(this.chip, p.line) : null };
    }
    return info;
  }

  // ---- relay ----

  private async switchRelay(on: boolean, reason: SwitchReason): Promise<void> {
    const relay = this.pins.relay;
    if (!this.running || !relay) throw this.error('not started');
    const feedback = this.pins.feedback;
    const unchanged = this.relay.requested === on;
    relay.write(on);
    this.relay = { ...this.relay, requested: on };
    this.lastSeen = new Date();
    this.log.info({ on, reason }, `relay ${on ? 'on' : 'off'} (${reason})`);
    let sensed: boolean | null = null;
    if (feedback) {
      // A contact already where it should be moves no more: no edge will come.
      if (!(unchanged && feedback.read() === on)) await this.contactFollows(on);
      if (!this.running) return;
      sensed = feedback.read();
    }
    this.relay = { requested: on, sensed };
    if (sensed !== null && sensed !== on) this.log.warn(this.relay, 'relay contact does not follow the command');
    this.emit('relay', this.relayState);
  }

  /** Resolves when the debounced contact reaches `want`, or after the settle time. */
  private contactFollows(want: boolean): Promise<void> {
    return new Promise((resolve) => {
      const wait: ContactWait = {
        want,
        timer: setTimeout(() => wait.done(), this.opts.settleMs ?? FEEDBACK_SETTLE_MS),
        done: () => {
          clearTimeout(wait.timer);
          if (this.contactWait === wait) this.contactWait = null;
          resolve();
        },
      };
      this.contactWait = wait;
    });
  }

  private onContact(on: boolean): void {
    this.lastSeen = new Date();
    if (this.contactWait) {
      // The command in progress reports; bounces towards the old state are not news.
      if (on === this.contactWait.want) this.contactWait.done();
      return;
    }
    if (on === this.relay.sensed) return;
    this.relay = { ...this.relay, sensed: on };
    if (on === this.relay.requested) this.log.info(this.relay, 'relay contact now follows the command');
    else this.log.warn(this.relay, on ? 'relay contact closed without a command' : 'relay contact opened by itself');
    this.emit('relay', this.relayState);
  }

  // ---- indication ----

  private play(pattern: Exclude<Indication, 'off'>): void {
    const beep = (at: number, ms: number) => {
      this.after(at, () => this.drive('buzzer', true));
      this.after(at + ms, () => this.drive('buzzer', false));
    };
    switch (pattern) {
      case 'granted':
        this.drive('ledGreen', true);
        beep(0, SHORT_BEEP_MS);
        return;
      case 'denied':
        this.drive('ledRed', true);
        beep(0, SHORT_BEEP_MS);
        beep(2 * SHORT_BEEP_MS, SHORT_BEEP_MS);
        return;
      case 'warning':
        this.blink('ledRed', WARNING_BLINK_MS);
        beep(0, SHORT_BEEP_MS);
        this.every(WARNING_BEEP_EVERY_MS, () => beep(0, SHORT_BEEP_MS));
        return;
      case 'error':
        this.drive('ledRed', true);
        beep(0, LONG_BEEP_MS);
        return;
      case 'info':
        this.blink('ledGreen', INFO_BLINK_MS);
        return;
    }
  }

  private blink(role: PinRole, halfPeriodMs: number): void {
    let on = true;
    this.drive(role, on);
    this.every(halfPeriodMs, () => {
      on = !on;
      this.drive(role, on);
    });
  }

  private after(ms: number, fn: () => void): void {
    if (ms <= 0) return fn();
    const t = setTimeout(() => {
      this.timeouts.delete(t);
      fn();
    }, ms);
    this.timeouts.add(t);
  }

  private every(ms: number, fn: () => void): void {
    this.intervals.add(setInterval(fn, ms));
  }

  /** Ends any indication: timers cleared, LEDs and buzzer off. */
  private quiet(): void {
    for (const t of this.timeouts) clearTimeout(t);
    for (const t of this.intervals) clearInterval(t);
    this.timeouts.clear();
    this.intervals.clear();
    this.indication = null;
    for (const role of INDICATORS) this.drive(role, false);
  }

  /** Writes an indicator line; a failing LED must not bring the gateway down from a timer. */
  private drive(role: PinRole, on: boolean): void {
    try {
      this.pins[role]?.write(on);
    } catch (err) {
      this.log.warn({ err, role }, `writing pins.${role} failed`);
    }
  }
}
