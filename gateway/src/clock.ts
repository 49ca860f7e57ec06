/**
 * Is the wall clock right? A Raspberry Pi has no real-time clock: after a power cut it
 * starts from the last saved time until NTP syncs. Sessions record this flag beside their
 * wall-clock times; their durations come from the monotonic clock either way.
 */
import { execFile } from 'node:child_process';

const POLL_MS = 60_000;

export class ClockStatus {
  /** null: unknown (no systemd-timesyncd to ask, e.g. in a container). */
  synced: boolean | null = null;
  private timer: NodeJS.Timeout | null = null;

  start(): void {
    this.poll();
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private poll(): void {
    execFile('timedatectl', ['show', '--property=NTPSynchronized', '--value'], { timeout: 2000 }, (err, stdout) => {
      const v = stdout.trim();
      this.synced = err ? null : v === 'yes' ? true : v === 'no' ? false : null;
    });
  }
}
