/** Rate limit of the broker: connection attempts per address (warnings are bounded by ../log-limit.ts). */

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
