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

interface Inflight extends Command {
  n: number;
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
  private readonly queue: Command[] = [];
  private readonly history = new Map<number, string>();
  private consecutiveResends = 0;
  private consecutiveTimeouts = 0;
  /** Set between a `Resend:` and the `ok` that Marlin sends after it. */
  private swallowOk: { timer: NodeJS.Timeout } | null = null;
  /** Learned: does this firmware follow `Resend:` with an `ok`? (Older Marlin and RRF do not.) */
  private resendHasOk = true;
  private timer: NodeJS.Timeout | null = null;
  private open = false;

  constructor(
    private readonly opts: LineProtocolOptions,
    private readonly write: (text: string) => void,
    /** Called to fetch the next command when the queue is empty (a print job's next line). */
    private readonly pull: () => Command | null,
    private readonly onGiveUp: (reason: string) => void,
  ) {}

  get idle(): boolean {
    return this.inflight === null && this.queue.length === 0;
  }

  /** Starts a numbered session: `M110 N0` first, as OctoPrint and Pronterface do. */
  begin(): void {
    this.reset();
    this.open = true;
    this.lineNo = -1;
    this.queue.unshift({ line: 'M110 N0' });
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
    this.history.set(done.n, done.line);
    this.history.delete(done.n - HISTORY);
    done.onAck?.();
    this.pump();
  }

  /**
   * The printer wants line `n` next. Usually that is the line in flight (it arrived damaged);
   * it can be an earlier one whose `ok` we took from an M105 poke. A request for a line not
   * sent yet or no longer kept is stale, and one that arrives while we are still answering
   * the previous request is a repeat: both are ignored.
   */
  private onResend(n: number): void {
    const cur = this.inflight;
    const replayable = cur !== null && n <= cur.n && (n === cur.n || this.history.has(n));
    if (!replayable || this.swallowOk) {
      this.stats.ignoredResends++;
      return;
    }
    if (++this.consecutiveResends > this.opts.maxConsecutiveResends) {
      return this.onGiveUp(`${this.consecutiveResends - 1} consecutive resend requests (line ${n})`);
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
    const next = this.queue.shift() ?? this.pull();
    if (!next) return;
    this.lineNo = this.lineNo + 1;
    this.inflight = { ...next, n: this.lineNo };
    this.transmit(this.inflight);
  }

  private transmit(l: Inflight): void {
    this.stats.linesSent++;
    this.write(numbered(l.n, l.line) + '\n');
    this.armTimer();
  }

  private armTimer(): void {
    this.clearTimer();
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
      return this.onGiveUp(`${this.consecutiveTimeouts} consecutive timeouts of ${this.opts.communicationMs} ms`);
    }
    // An unnumbered M105 provokes an answer; if our line was lost, the next numbered line
    // then draws a resend request for it.
    this.write('M105\n');
    this.armTimer();
  }
}
