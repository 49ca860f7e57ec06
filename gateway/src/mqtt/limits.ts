/** Rate limits of the broker: connection attempts per address, and warnings per device or address. */

/** Beyond this many keys, keys whose bucket is full again are forgotten. */
const MAX_KEYS = 10_000;

/** Token buckets per key: `perMinute` at once, then one every 60/perMinute seconds. Time is passed in (monotonic ms). */
export class RateLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;

  constructor(private readonly perMinute: number) {
    this.perMs = perMinute / 60_000;
  }

  /** Takes one token for `key`; false when there is none left. */
  take(key: string, nowMs: number): boolean {
    const tokens = this.tokens(key, nowMs);
    const ok = tokens >= 1;
    this.buckets.set(key, { tokens: ok ? tokens - 1 : tokens, at: nowMs });
    if (this.buckets.size > MAX_KEYS) this.prune(nowMs);
    return ok;
  }

  private tokens(key: string, nowMs: number): number {
    const b = this.buckets.get(key);
    return b ? Math.min(this.perMinute, b.tokens + Math.max(0, nowMs - b.at) * this.perMs) : this.perMinute;
  }

  private prune(nowMs: number): void {
    for (const key of [...this.buckets.keys()]) if (this.tokens(key, nowMs) >= this.perMinute) this.buckets.delete(key);
  }
}

/**
 * Lets the first `perWindow` warnings about one key (a device, an address) through in each
 * window and counts the rest, so that one faulty device neither floods the log nor hides
 * another's problem.
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
