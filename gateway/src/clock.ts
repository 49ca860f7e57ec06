/**
 * Is the wall clock right? A Raspberry Pi has no real-time clock: after a power cut it
 * starts from the last saved time until NTP syncs, and then the wall clock jumps. Sessions
 * record the synchronised flag beside their wall-clock times, the journal stores it with every
 * event, and durations come from the monotonic clock either way. A jump is found by comparing
 * how far the wall clock and the monotonic clock moved between two looks.
 */
import { execFile } from 'node:child_process';

const POLL_MS = 60_000;
const JUMP_CHECK_MS = 5_000;
/** Smaller differences are timer lateness and NTP slewing, not a step. */
export const JUMP_THRESHOLD_MS = 2_000;

/**
 * The gateway's steady clock, in whole ms: the monotonic clock counted from the wall-clock
 * time the process started. It never jumps within a run, and its readings stay comparable with
 * an earlier run's as far as the wall clock was right at both starts, so meter states keep them
 * across restarts (a wall clock set back between runs only makes the meters stricter).
 */
export const steadyNow = (): number => Math.round(performance.timeOrigin + performance.now());

export interface ClockReading {
  /** Wall clock, ms since the epoch. */
  wall: number;
  /** Monotonic clock, ms. */
  mono: number;
}

export interface ClockJump {
  /** How far the wall clock jumped, ms: positive forwards. */
  byMs: number;
  /** The wall-clock time it would have shown without the jump, and the time it shows. */
  from: string;
  to: string;
  synced: boolean | null;
}

/** How far the wall clock jumped between two readings, or null when it kept pace with the monotonic clock. */
export function clockJump(prev: ClockReading, now: ClockReading, thresholdMs = JUMP_THRESHOLD_MS): number | null {
  const byMs = now.wall - prev.wall - (now.mono - prev.mono);
  return Math.abs(byMs) >= thresholdMs ? Math.round(byMs) : null;
}

export interface ClockOptions {
  /** Called when the wall clock jumps (the gateway journals `clock.jumped`). */
  onJump?: (jump: ClockJump) => void;
  read?: () => ClockReading;
  /** Asks whether the clock is synchronised; the default asks systemd (timedatectl). */
  query?: () => Promise<boolean | null>;
}

export class ClockStatus {
  /** null: unknown (no systemd-timesyncd to ask, e.g. in a container). */
  synced: boolean | null = null;
  private timers: NodeJS.Timeout[] = [];
  private last: ClockReading;
  private readonly read: () => ClockReading;
  private readonly query: () => Promise<boolean | null>;

  constructor(private readonly opts: ClockOptions = {}) {
    this.read = opts.read ?? (() => ({ wall: Date.now(), mono: performance.now() }));
    this.query = opts.query ?? timedatectl;
    this.last = this.read();
  }

  start(): void {
    void this.poll();
    this.last = this.read();
    this.timers.push(
      setInterval(() => void this.poll(), POLL_MS),
      setInterval(() => this.checkJump(), JUMP_CHECK_MS),
    );
    for (const t of this.timers) t.unref();
  }

  stop(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  /** Compares both clocks with the last look; reports a jump. */
  checkJump(): void {
    const now = this.read();
    const byMs = clockJump(this.last, now);
    if (byMs !== null) {
      this.opts.onJump?.({ byMs, from: new Date(now.wall - byMs).toISOString(), to: new Date(now.wall).toISOString(), synced: this.synced });
    }
    this.last = now;
  }

  async poll(): Promise<void> {
    this.synced = await this.query();
  }
}

function timedatectl(): Promise<boolean | null> {
  return new Promise((resolve) =>
    execFile('timedatectl', ['show', '--property=NTPSynchronized', '--value'], { timeout: 2000 }, (err, stdout) => {
      const v = stdout.trim();
      resolve(err ? null : v === 'yes' ? true : v === 'no' ? false : null);
    }),
  );
}
