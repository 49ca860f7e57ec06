/**
 * GPIO lines as the switch uses them: logical values (activeLow applied), debounced input
 * watches. Two implementations with one interface: real lines through onoff (sysfs) and
 * in-memory lines for a machine without GPIO, whose feedback contact follows the relay.
 */
import { createRequire } from 'node:module';
import type { Gpio } from 'onoff';
import { globalNumber, type GpioChip } from './chip.js';
import type { PinRole } from './config.js';

export interface PinSpec {
  role: PinRole;
  /** BCM line offset on the chip. */
  line: number;
  activeLow: boolean;
  direction: 'in' | 'out';
  /** Output only: a line already exported as an output keeps its level (the relay across restarts). Otherwise outputs start inactive. */
  keep?: boolean;
  /** Input only: watch callbacks wait until the value has been stable this long. */
  debounceMs?: number;
}

export interface Pin {
  readonly role: PinRole;
  readonly line: number;
  /** Number in the sysfs global space, or null for a simulated line. */
  readonly global: number | null;
  /** Logical value: true is active, whatever the electrical level. */
  write(on: boolean): void;
  read(): boolean;
  /** Inputs: called with the debounced logical value on each change. */
  watch(onChange: (on: boolean) => void, onError: (err: Error) => void): void;
  /** Stops watching and gives the line back to the kernel. */
  unexport(): void;
  /**
   * Stops watching but leaves the line exported and driven. Mainline kernels turn a released
   * line into an input (Raspberry Pi kernels keep outputs), which would drop or float a relay.
   */
  release(): void;
}

export interface PinFactory {
  open(spec: PinSpec): Pin;
}

type Onoff = typeof import('onoff');
let onoff: Onoff | undefined;

/** Loaded on first use: its native epoll binding is only needed on a machine with real GPIO. */
function loadOnoff(): Onoff {
  onoff ??= createRequire(import.meta.url)('onoff') as Onoff;
  return onoff;
}

class OnoffPin implements Pin {
  constructor(
    readonly role: PinRole,
    readonly line: number,
    readonly global: number,
    private readonly gpio: Gpio,
  ) {}

  write(on: boolean): void {
    this.gpio.writeSync(on ? 1 : 0);
  }

  read(): boolean {
    return this.gpio.readSync() === 1;
  }

  watch(onChange: (on: boolean) => void, onError: (err: Error) => void): void {
    this.gpio.watch((err, value) => (err ? onError(err) : onChange(value === 1)));
  }

  unexport(): void {
    this.gpio.unexport();
  }

  release(): void {
    // onoff cannot close its value file without unexporting; the descriptor lives until exit.
    this.gpio.unwatchAll();
  }
}

/** Real lines of `chip` through onoff: global number = chip base + line. */
export function onoffPins(chip: GpioChip): PinFactory {
  return {
    open(spec) {
      const { Gpio } = loadOnoff();
      const global = globalNumber(chip, spec.line);
      let gpio: Gpio;
      if (spec.direction === 'in') {
        gpio = new Gpio(global, 'in', 'both', { activeLow: spec.activeLow, debounceTimeout: spec.debounceMs ?? 0 });
      } else {
        // sysfs 'high'/'low' set the electrical level, ignoring active_low; plain 'out' drives low,
        // which would switch an active-low relay on while it is being exported.
        gpio = new Gpio(global, spec.activeLow ? 'high' : 'low', undefined, { activeLow: spec.activeLow, reconfigureDirection: !spec.keep });
      }
      return new OnoffPin(spec.role, spec.line, global, gpio);
    },
  };
}

export class SimulatedPin implements Pin {
  readonly global = null;
  /** Electrical level, 0 or 1. */
  level: 0 | 1;
  exported = true;
  private stuck: boolean | null = null;
  private watchers: ((on: boolean) => void)[] = [];
  private debounce: NodeJS.Timeout | null = null;
  private reported: boolean;

  constructor(
    readonly role: PinRole,
    readonly line: number,
    readonly activeLow: boolean,
    readonly direction: 'in' | 'out',
    private readonly debounceMs: number,
    private readonly onWrite: (on: boolean) => void = () => {},
  ) {
    this.level = activeLow ? 1 : 0;
    this.reported = false;
  }

  write(on: boolean): void {
    this.assertExported();
    if (this.direction === 'in') throw new Error(`simulated ${this.role} (line ${this.line}) is an input; writing it is not permitted`);
    this.level = on !== this.activeLow ? 1 : 0;
    this.onWrite(on);
  }

  read(): boolean {
    this.assertExported();
    return (this.level === 1) !== this.activeLow;
  }

  watch(onChange: (on: boolean) => void): void {
    this.assertExported();
    this.reported = this.read();
    this.watchers.push(onChange);
  }

  unexport(): void {
    this.release();
    this.exported = false;
  }

  release(): void {
    this.watchers = [];
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = null;
  }

  /** The world outside: the contact closes (true) or opens (false), unless it is stuck. */
  set(on: boolean): void {
    if (this.stuck !== null) on = this.stuck;
    this.apply(on);
  }

  /** A welded or broken contact: holds `on` whatever happens, until `stick(null)`. */
  stick(on: boolean | null): void {
    this.stuck = on;
    if (on !== null) this.apply(on);
  }

  private apply(on: boolean): void {
    if (!this.exported) return;
    const level = on !== this.activeLow ? 1 : 0;
    if (level === this.level) return;
    this.level = level;
    if (this.watchers.length === 0) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      const now = this.read();
      if (now === this.reported) return;
      this.reported = now;
      for (const w of [...this.watchers]) w(now);
    }, this.debounceMs);
  }

  private assertExported(): void {
    if (!this.exported) throw new Error(`simulated ${this.role} (line ${this.line}) is not exported`);
  }
}

/**
 * In-memory lines with a physical model: the feedback contact follows the relay after
 * `followMs`, like an auxiliary contact on a real relay. Lines kept across a stop (the relay)
 * come back with their level when opened again.
 */
export class SimulatedBoard implements PinFactory {
  readonly pins = new Map<PinRole, SimulatedPin>();
  private follow: NodeJS.Timeout | null = null;

  constructor(readonly followMs = 5) {}

  open(spec: PinSpec): SimulatedPin {
    const old = this.pins.get(spec.role);
    const onWrite = spec.role === 'relay' ? (on: boolean) => this.relayMoved(on) : undefined;
    const pin = new SimulatedPin(spec.role, spec.line, spec.activeLow, spec.direction, spec.debounceMs ?? 0, onWrite);
    if (spec.keep && old?.exported && old.direction === 'out') pin.level = old.level;
    if (spec.role === 'feedback') {
      const relay = this.pins.get('relay');
      pin.level = (relay?.exported ? relay.read() : false) !== spec.activeLow ? 1 : 0;
    }
    this.pins.set(spec.role, pin);
    return pin;
  }

  pin(role: PinRole): SimulatedPin | undefined {
    return this.pins.get(role);
  }

  /** Cancels the pending contact movement. */
  dispose(): void {
    if (this.follow) clearTimeout(this.follow);
    this.follow = null;
  }

  private relayMoved(on: boolean): void {
    this.dispose();
    this.follow = setTimeout(() => {
      this.follow = null;
      this.pins.get('feedback')?.set(on);
    }, this.followMs);
  }
}

/** Real lines on `chip`, or the simulated board. */
export function pinFactory(simulated: SimulatedBoard | null, chip: GpioChip | null): PinFactory {
  if (simulated) return simulated;
  if (!chip) throw new Error('real GPIO lines need a resolved chip');
  return onoffPins(chip);
}
