/**
 * A simulated RDM6300 reader: while a card is held in the field it sends the card's frame
 * every `repeatMs`, as the module does. Fault injection: line noise and frames with a wrong
 * checksum. The ground truth lists the taps made and what went out on the wire.
 */
import { encodeRdm6300 } from '../../../gateway/src/devices/rfid/rdm6300.js';
import type { SimulatedDevice } from '../transports.js';

export interface Rdm6300SimOptions {
  /** Interval between repeated frames while a card is held. */
  repeatMs?: number;
  /** Seed of the noise generator, so that a test's garbage is the same every run. */
  seed?: number;
}

export interface Rdm6300Tap {
  uid: string;
  holdMs: number;
  /** Frames of this tap that went out on the wire (none while unplugged). */
  frames: number;
}

export interface Rdm6300Truth {
  taps: Rdm6300Tap[];
  /** Valid frames written, repeats included. */
  framesSent: number;
  badChecksumFrames: number;
  garbageBytes: number;
  /** The card in the field now, if any. */
  holding: string | null;
}

interface Hold {
  tap: Rdm6300Tap;
  repeat: NodeJS.Timeout;
  end: NodeJS.Timeout;
  done: () => void;
}

export class Rdm6300Sim implements SimulatedDevice {
  readonly opts: Required<Rdm6300SimOptions>;
  private sink: ((bytes: Uint8Array) => void) | null = null;
  private hold: Hold | null = null;
  private readonly taps: Rdm6300Tap[] = [];
  private framesSent = 0;
  private badChecksumFrames = 0;
  private garbageBytes = 0;
  private rng: number;

  constructor(opts: Rdm6300SimOptions = {}) {
    this.opts = { repeatMs: 100, seed: 1, ...opts };
    this.rng = this.opts.seed >>> 0 || 1;
  }

  // ---- transport ----

  attach(sink: (bytes: Uint8Array) => void): void {
    this.sink = sink;
  }

  detach(): void {
    this.sink = null;
  }

  /** The module's receive pin is unused: whatever the gateway sends is ignored. */
  feed(_chunk: Uint8Array): void {}

  // ---- controls ----

  /**
   * Holds a card (10 hex digits) in the field for `holdMs`: its frame goes out at once and
   * then every `repeatMs`. A card already in the field is taken away first. Resolves when
   * the card is taken away.
   */
  tap(uid: string, holdMs = 300): Promise<void> {
    const frame = encodeRdm6300(uid);
    this.remove();
    const tap: Rdm6300Tap = { uid: uid.toUpperCase(), holdMs, frames: 0 };
    this.taps.push(tap);
    const send = () => {
      if (!this.write(frame)) return;
      tap.frames++;
      this.framesSent++;
    };
    send();
    return new Promise((resolve) => {
      this.hold = { tap, repeat: setInterval(send, this.opts.repeatMs), end: setTimeout(() => this.remove(), holdMs), done: resolve };
    });
  }

  /** Takes the card out of the field. */
  remove(): void {
    const h = this.hold;
    if (!h) return;
    this.hold = null;
    clearInterval(h.repeat);
    clearTimeout(h.end);
    h.done();
  }

  /** Line noise: `bytes` as given, or that many pseudo-random bytes (STX and ETX among them). */
  garbage(bytes: number | Uint8Array): void {
    const data = typeof bytes === 'number' ? Uint8Array.from({ length: Math.floor(bytes) }, () => this.nextByte()) : bytes;
    if (this.write(data)) this.garbageBytes += data.length;
  }

  /** One frame of this card with its checksum wrong. */
  badChecksum(uid: string): void {
    const frame = encodeRdm6300(uid);
    const checksum = parseInt(Buffer.from(frame.subarray(11, 13)).toString('latin1'), 16) ^ 0xff;
    frame.set(Buffer.from(checksum.toString(16).toUpperCase().padStart(2, '0'), 'latin1'), 11);
    if (this.write(frame)) this.badChecksumFrames++;
  }

  truth(): Rdm6300Truth {
    return {
      taps: this.taps.map((t) => ({ ...t })),
      framesSent: this.framesSent,
      badChecksumFrames: this.badChecksumFrames,
      garbageBytes: this.garbageBytes,
      holding: this.hold?.tap.uid ?? null,
    };
  }

  private write(bytes: Uint8Array): boolean {
    if (!this.sink) return false;
    this.sink(bytes);
    return true;
  }

  /** xorshift32: reproducible noise without a dependency. */
  private nextByte(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng & 0xff;
  }
}
