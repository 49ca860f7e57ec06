/**
 * Bounds on warnings that a device can repeat as fast as it sends (a frame rejected, a message
 * refused, a reading set aside): one faulty device, a wrong baud rate or line noise must neither
 * fill the log (an SD card on a Pi) nor hide another device's problem. What is counted stays
 * exact; only the lines are bounded.
 */
import type { Logger } from './log.js';

/** Beyond this many keys, keys with nothing held back and an ended window are forgotten. */
const MAX_KEYS = 10_000;

/**
 * Lets the first `perWindow` warnings about one key (a device, an address) through in each
 * window and counts the rest. Time is passed in (monotonic ms).
 */
export class WarnLimit {
  private readonly keys = new Map<string, { start: number; logged: number; suppressed: number }>();

  constructor(
    private readonly perWindow = 5,
    private readonly windowMs = 10_000,
  ) {}

  /** null: do not log; otherwise how many warnings about `key` were suppressed before this one. */
  take(key: string, nowMs: number): number | null {
    let k = this.keys.get(key);
    if (!k || nowMs - k.start >= this.windowMs) {
      k = { start: nowMs, logged: 0, suppressed: k?.suppressed ?? 0 };
      this.keys.set(key, k);
      if (this.keys.size > MAX_KEYS) for (const [other, v] of this.keys) if (nowMs - v.start >= this.windowMs && v.suppressed === 0) this.keys.delete(other);
    }
    if (k.logged >= this.perWindow) {
      k.suppressed++;
      return null;
    }
    k.logged++;
    const suppressed = k.suppressed;
    k.suppressed = 0;
    return suppressed;
  }
}

export interface WarnFloodOptions {
  perWindow?: number;
  windowMs?: number;
  /** Monotonic milliseconds. */
  clock?: () => number;
}

/**
 * One source's repeated warnings: the first `perWindow` of each window logged in full, the
 * rest counted by kind and summed up in one line a window after the first one held back,
 * however long the flood lasts.
 */
export class WarnFlood {
  private readonly limit: WarnLimit;
  private readonly windowMs: number;
  private readonly clock: () => number;
  private held = new Map<string, number>();
  private last = '';
  private timer: NodeJS.Timeout | null = null;

  /** `summary(count, kinds)`: the summary line's text, e.g. "12 more rejected frames (crc 10, cobs 2)" from kinds "crc 10, cobs 2". */
  constructor(
    private readonly log: Logger,
    private readonly summary: (count: number, kinds: string) => string,
    opts: WarnFloodOptions = {},
  ) {
    this.limit = new WarnLimit(opts.perWindow, opts.windowMs);
    this.windowMs = opts.windowMs ?? 10_000;
    this.clock = opts.clock ?? (() => performance.now());
  }

  /** Logs the warning, or counts it under `kind` for the summary; returns whether it was logged. */
  warn(kind: string, fields: Record<string, unknown>, msg: string): boolean {
    if (this.limit.take('', this.clock()) !== null) {
      this.log.warn(fields, msg);
      return true;
    }
    this.held.set(kind, (this.held.get(kind) ?? 0) + 1);
    this.last = msg;
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.windowMs);
      this.timer.unref();
    }
    return false;
  }

  /** Logs the summary of what was held back, if anything (also at stop). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.held.size === 0) return;
    const held = Object.fromEntries(this.held);
    const count = [...this.held.values()].reduce((a, b) => a + b, 0);
    const kinds = [...this.held].map(([k, n]) => `${k} ${n}`).join(', ');
    this.held = new Map();
    this.log.warn({ held, last: this.last }, `${this.summary(count, kinds)}; last: ${this.last}`);
  }
}
