/**
 * Turns badge reads into taps: a card counts when it was not read during the last `gapMs`, so
 * a card held on a reader that repeats it (RDM6300, many networked readers) is one tap. Pure
 * over the times it is given; remembers only the cards read within the gap, and at most
 * `maxCards` of them, so a flood of different cards cannot grow it without bound.
 */
export class TapFilter {
  private readonly lastRead = new Map<string, number>();

  constructor(
    private readonly gapMs: number,
    private readonly maxCards = 4096,
  ) {}

  /** Whether this read of `uid` at `atMs` (a monotonic clock) is a new tap. */
  read(uid: string, atMs: number): boolean {
    const last = this.lastRead.get(uid);
    // Reinsert, so the map stays ordered by last read and expired cards are at its front.
    this.lastRead.delete(uid);
    this.lastRead.set(uid, atMs);
    for (const [old, at] of this.lastRead) {
      if (atMs - at < this.gapMs && this.lastRead.size <= this.maxCards) break;
      this.lastRead.delete(old);
    }
    return last === undefined || atMs - last >= this.gapMs;
  }

  /** Cards currently remembered. */
  get size(): number {
    return this.lastRead.size;
  }
}
