/**
 * The host side of the Marlin line protocol: numbered, checksummed lines, one unacknowledged
 * line at a time, resend requests, and the timeouts that poke a quiet printer. It knows
 * nothing about printing; the driver feeds it commands and hears about acknowledgements.
 */

export interface LineProtocolOptions {
  maxConsecutiveResends: number;
  communicationMs: number;
  maxConsecutiveTimeouts: number;
}

export interface LineProtocolStats {
  linesSent: number;
  linesAcked: number;
  resends: number;
  ignoredResends: number;
  timeouts: number;
  lineErrors: number;
}

export interface Command {
  line: string;
  /** Called when the printer acknowledged the line (`ok`). */
  onAck?: () => void;
}

/** What the protocol needs from the driver. */
export interface LineProtocolHooks {
  write(text: string): void;
  /** The next command when the queue is empty (a print job's next line). */
  pull(): Command | null;
  /** Too many resends or timeouts in a row: the port should be reopened. */
  giveUp(reason: string): void;
  /** A timeout found that the printer said nothing at all, not even an auto-report; it has just been poked with M105. */
  silent(): void;
}

interface Queued extends Command {
  /** Sent without a number, ahead of the numbered session (see `begin`). */
  unnumbered?: boolean;
}

interface Inflight extends Command {
  /** null: sent without a number. */
  n: number | null;
}

/** Lines kept after their `ok`, to answer a resend request for a line the printer never got. */
const HISTORY = 32;

/** `N12 G1 X5*87`: the checksum is the XOR of every byte before `*`, in decimal. */
export function numbered(n: number, line: string): string {
  const body = `N${n} ${line}`;
  let cs = 0;
  for (let i = 0; i < body.length; i++) cs ^= body.charCodeAt(i);
  return `${body}*${cs}`;
}

export class LineProtocol {
  readonly stats: LineProtocolStats = { linesSent: 0, linesAcked: 0, resends: 0, ignoredResends: 0, timeouts: 0, lineErrors: 0 };
  private lineNo = 0;
  private inflight: Inflight | null = null;
  private readonly queue: Queued[] = [];
  private readonly history = new Map<number, string>();
  private consecutiveResends = 0;
  private consecutiveTimeouts = 0;
  /** Set between a `Resend:` and the `ok` that Marlin sends after it. */
  private swallowOk: { timer: NodeJS.Timeout } | null = null;
  /** Learned: does this firmware follow `Resend:` with an `ok`? (Older Marlin and RRF do not.) */
  private resendHasOk = true;
  private timer: NodeJS.Timeout | null = null;
  /** Something (an auto-report too) was heard since the timer was armed. */
  private heard = false;
  private open = false;

  constructor(
    private readonly opts: LineProtocolOptions,
    private readonly hooks: LineProtocolHooks,
  ) {}

  get idle(): boolean {
    return this.inflight === null && this.queue.length === 0;
  }

  /**
   * Starts a numbered session: `M110 N0` first, as OctoPrint and Pronterface do. `first` goes
   * ahead of it without a number, and is answered before the session starts: M999 to a halted
   * printer, which acknowledges no line until it is resumed (its resend request that follows
   * is for the old session, and ignored).
   */
  begin(first?: Command): void {
    this.reset();
    this.open = true;
    this.lineNo = -1;
    this.queue.unshift(...(first ? [{ ...first, unnumbered: true }] : []), { line: 'M110 N0' });
    this.pump();
  }

  /** Forgets everything (the port closed or the printer reset) and says what was dropped. */
  reset(): { inflight: Command | null; queued: Command[] } {
    this.open = false;
    this.clearTimer();
    if (this.swallowOk) clearTimeout(this.swallowOk.timer);
    this.swallowOk = null;
    const dropped = { inflight: this.inflight, queued: this.queue.splice(0) };
    this.inflight = null;
    this.history.clear();
    this.consecutiveResends = this.consecutiveTimeouts = 0;
    return dropped;
  }

  send(cmd: Command): void {
    this.queue.push(cmd);
    this.pump();
  }

  /** Asks the puller for work again (a job started or resumed). */
  kick(): void {
    this.pump();
  }

  /**
   * Every line from the printer goes through here, already classified by the driver.
   * `answering` is false for unsolicited auto-reports (temperatures, SD status): they prove
   * the printer is alive but not that it is working on our line, so they do not hold off
   * the timeout that recovers a lost `ok`.
   */
  onLine(isOk: boolean, resend: number | null, isLineError: boolean, answering: boolean): void {
    this.heard = true;
    if (answering) {
      this.armTimer();
      this.consecutiveTimeouts = 0;
    }
    if (isLineError) {
      this.stats.lineErrors++;
      return;
    }
    if (resend !== null) return this.onResend(resend);
    if (!isOk) return;
    if (this.swallowOk) {
      clearTimeout(this.swallowOk.timer);
      this.swallowOk = null;
      return this.pump();
    }
    if (!this.inflight) return; // an ok for an unnumbered M105 poke
    const done = this.inflight;
    this.inflight = null;
    this.consecutiveResends = 0;
    this.stats.linesAcked++;
    if (done.n !== null) {
      this.history.set(done.n, done.line);
      this.history.delete(done.n - HISTORY);
    }
    done.onAck?.();
    this.pump();
  }

  /**
   * The printer wants line `n` next. Usually that is the line in flight (it arrived damaged);
   * it can be an earlier one whose `ok` we took from an M105 poke. A request for a line not
   * sent yet or no longer kept is stale, so is one while an unnumbered line is in flight (it
   * belongs to the session before), and one that arrives while we are still answering the
   * previous request is a repeat: all are ignored.
   */
  private onResend(n: number): void {
    const cur = this.inflight;
    if (cur === null || cur.n === null || n > cur.n || (n < cur.n && !this.history.has(n)) || this.swallowOk) {
      this.stats.ignoredResends++;
      return;
    }
    if (++this.consecutiveResends > this.opts.maxConsecutiveResends) {
      return this.hooks.giveUp(`${this.consecutiveResends - 1} consecutive resend requests (line ${n})`);
    }
    // Replay n..cur: earlier lines were acknowledged once already, so they carry no callback.
    const replay: Command[] = [];
    for (let k = n; k < cur.n; k++) replay.push({ line: this.history.get(k)! });
    this.queue.unshift(...replay, { line: cur.line, onAck: cur.onAck });
    this.inflight = null;
    this.lineNo = n - 1;
    this.stats.resends += replay.length + 1;
    if (!this.resendHasOk) return this.pump();
    // Marlin follows a resend request with an ok; wait for it so that it is not taken for the
    // replayed line's. If none comes, this firmware does not send it: remember that.
    this.swallowOk = {
      timer: setTimeout(() => {
        this.swallowOk = null;
        this.resendHasOk = false;
        this.pump();
      }, 150),
    };
  }

  private pump(): void {
    if (!this.open || this.inflight || this.swallowOk) return;
    const next: Queued | null = this.queue.shift() ?? this.hooks.pull();
    if (!next) return;
    this.inflight = { line: next.line, onAck: next.onAck, n: next.unnumbered ? null : ++this.lineNo };
    this.transmit(this.inflight);
  }

  private transmit(l: Inflight): void {
    this.stats.linesSent++;
    this.hooks.write((l.n === null ? l.line : numbered(l.n, l.line)) + '\n');
    this.armTimer();
  }

  private armTimer(): void {
    this.clearTimer();
    this.heard = false;
    if (!this.open) return;
    this.timer = setTimeout(() => this.onTimeout(), this.opts.communicationMs);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private onTimeout(): void {
    this.stats.timeouts++;
    if (++this.consecutiveTimeouts >= this.opts.maxConsecutiveTimeouts) {
      return this.hooks.giveUp(`${this.consecutiveTimeouts} consecutive timeouts of ${this.opts.communicationMs} ms`);
    }
    // An unnumbered M105 provokes an answer; if our line was lost, the next numbered line
    // then draws a resend request for it.
    const silent = !this.heard;
    this.hooks.write('M105\n');
    this.armTimer();
    if (silent) this.hooks.silent();
  }
}
