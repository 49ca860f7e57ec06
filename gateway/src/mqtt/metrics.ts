/**
 * What the embedded broker counts for its health summary: messages in, out and handed to the
 * gateway, replies and commands that missed, and every refusal by reason. A refusal is also
 * logged naming the device or address, the topic and the problem, a few a window per device
 * or address (limits.ts), so that one faulty device neither floods the log nor hides another.
 */
import type { Logger } from '../log.js';
import { WarnLimit } from '../log-limit.js';
import { REJECTION_REASONS, type RejectionReason } from './schemas.js';

export class BrokerMetrics {
  readonly counters = { in: 0, out: 0, dispatched: 0, unmatchedReplies: 0, expiredCommands: 0 };
  readonly rejected = Object.fromEntries(REJECTION_REASONS.map((r) => [r, 0])) as Record<RejectionReason, number>;
  private readonly warnings = new WarnLimit();

  constructor(
    private readonly log: Logger,
    /** Monotonic milliseconds, for the warnings' windows. */
    private readonly clock: () => number,
  ) {}

  /** Counts a refusal and logs it, a few a window per device or address (`key`). */
  reject(reason: RejectionReason, key: string, message: string, fields: Record<string, unknown>): void {
    this.rejected[reason]++;
    const suppressed = this.warnings.take(key, this.clock());
    if (suppressed === null) return;
    const more = suppressed > 0 ? ` (${suppressed} more about ${key} not logged before this one)` : '';
    this.log.warn({ ...fields, reason, ...(suppressed > 0 && { suppressed }) }, message + more);
  }
}
