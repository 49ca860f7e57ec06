/**
 * Is the journal's storage usable? An SD card fills up, or fails and is remounted read-only by
 * the kernel. The monitor learns it two ways: from writes the journal could not make (the
 * journal then holds them in memory, see journal.ts), and from a periodic look at the data
 * directory — free space against a floor, and whether it is still writable (access(2) answers
 * EROFS on a read-only mount without writing anything to the card).
 *
 * While there is a problem, new sessions are refused (their records could not be written) and
 * held writes are retried at every check; running sessions go on, and the relay logic does not
 * depend on the journal.
 */
import { constants } from 'node:fs';
import { access, statfs } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { STORAGE_PROBLEM_TEXT, storageProblemOf, type Journal, type StorageProblem } from './journal.js';

export type StorageState = 'ok' | 'low-space' | StorageProblem;

export interface StorageHealth {
  state: StorageState;
  /** Bytes free for the gateway in the data directory's file system; null until the first check. */
  freeBytes: number | null;
  /** Below this, new sessions are refused. */
  floorBytes: number;
  /** Events and closed sessions kept in memory until the storage accepts them. */
  heldWrites: number;
  /** When the current problem was first seen. */
  since: string | null;
  /** What is wrong and what to do, for a person; null when all is well. */
  message: string | null;
}

export interface StorageOptions {
  floorBytes: number;
  checkMs: number;
}

export class StorageMonitor {
  private state: StorageState = 'ok';
  private since: Date | null = null;
  private freeBytes: number | null = null;
  /** A write the journal could not make; cleared once what it held is written. */
  private writeProblem: StorageProblem | null = null;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void)[] = [];

  constructor(
    private readonly journal: Journal,
    private readonly dataDir: string,
    private readonly opts: StorageOptions,
    private readonly log: Logger,
  ) {}

  /** Checks once (so health is right from the start), then every `checkMs`. */
  async start(): Promise<void> {
    this.unsubscribe = [
      this.journal.onStorage((problem, err) => {
        this.writeProblem = problem;
        this.update(err?.message ?? null);
      }),
      this.journal.onUnwritable(({ what, events, err }) => {
        const kinds = events.length ? `, recording ${events.map((e) => e.kind).join(', ')}` : '';
        this.log.error({ err, events }, `a held journal write cannot be written and was set aside: ${what}${kinds} failed for another reason than the storage (${err.message}); its events are in this entry, to be recovered by hand`);
      }),
    ];
    await this.check();
    this.timer = setInterval(() => void this.check(), this.opts.checkMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const u of this.unsubscribe.splice(0)) u();
  }

  /** Looks at the data directory and retries the held writes. */
  async check(): Promise<void> {
    let problem: StorageProblem | null = null;
    try {
      const s = await statfs(this.dataDir);
      this.freeBytes = s.bavail * s.bsize;
      await access(this.dataDir, constants.W_OK);
      await access(this.journal.file, constants.W_OK);
    } catch (err) {
      problem = storageProblemOf(err) ?? ((err as NodeJS.ErrnoException).code === 'EACCES' ? 'read-only' : 'io-error');
      this.update((err as Error).message, problem);
      return;
    }
    if (this.journal.heldWrites > 0) this.journal.flushHeld();
    // nothing held: the last write went through
    if (this.journal.heldWrites === 0) this.writeProblem = null;
    this.update(null);
  }

  /**
   * Takes a write error thrown where nobody could handle it (a meter or checkpoint write from a
   * timer or a device event): when the storage caused it, it is reported here and the gateway
   * goes on — the relays keep following the sessions. Returns whether it was a storage error.
   */
  absorb(err: unknown): boolean {
    const problem = storageProblemOf(err);
    if (problem === null) return false;
    this.writeProblem = problem;
    this.update((err as Error).message);
    return true;
  }

  health(): StorageHealth {
    return {
      state: this.state,
      freeBytes: this.freeBytes,
      floorBytes: this.opts.floorBytes,
      heldWrites: this.journal.heldWrites,
      since: this.since?.toISOString() ?? null,
      message: this.refusal(),
    };
  }

  /** Why a new session cannot be recorded now, or null when it can. */
  refusal(): string | null {
    if (this.state === 'ok') return null;
    const what =
      this.state === 'low-space'
        ? `only ${mb(this.freeBytes ?? 0)} free, below the floor of ${mb(this.opts.floorBytes)} (gateway.minFreeMb): free space on it or move gateway.dataDir to a larger disk`
        : STORAGE_PROBLEM_TEXT[this.state];
    return `the journal's storage at ${this.dataDir} cannot record new sessions: ${what}`;
  }

  /** Works out the state from the last check and the journal's writes; logs and journals a change. */
  private update(detail: string | null, checked: StorageProblem | null = null): void {
    const low = this.freeBytes !== null && this.freeBytes < this.opts.floorBytes;
    const next: StorageState = checked ?? this.writeProblem ?? (low ? 'low-space' : 'ok');
    if (next === this.state) return;
    const previous = this.state;
    this.state = next;
    this.since = next === 'ok' ? null : new Date();
    if (next === 'ok') {
      this.log.info({ previous, freeBytes: this.freeBytes }, `the journal's storage is usable again; new sessions are allowed`);
      this.journal.record('storage.recovered', null, { previous, freeBytes: this.freeBytes });
      return;
    }
    this.log.error({ state: next, freeBytes: this.freeBytes, detail, heldWrites: this.journal.heldWrites }, this.refusal()!);
    // Held in memory with the rest when the storage refuses it: the journal then shows when the problem began.
    this.journal.record('storage.problem', null, { state: next, freeBytes: this.freeBytes, floorBytes: this.opts.floorBytes, detail });
  }
}

const mb = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;
