/**
 * The host side of the Marlin line protocol: numbered, checksummed lines, resend requests, and
 * the timeouts that poke a quiet printer. One unacknowledged line at a time, unless the firmware
 * has ADVANCED_OK: its oks then say which line they acknowledge and how many command slots are
 * free (`ok N12 P15 B3`), and several lines are kept in flight, as many as the free slots it last
 * reported and never more bytes than its serial receive buffer holds, so that none can overflow
 * it. It knows nothing about printing; the driver feeds it commands and hears about
 * acknowledgements.
 */
export interface LineProtocolOptions {
  maxConsecutiveResends: number;
  /** The firmware's serial receive buffer, bytes (RX_BUFFER_SIZE); bounds the lines in flight with ADVANCED_OK. */
  rxBufferBytes?: number;
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
  /** The most lines that were in flight at once (1 without ADVANCED_OK). */
  maxInFlight: number;
}

/** What an ADVANCED_OK `ok` says: the line it acknowledges (null: an unnumbered command's) and the free planner blocks and command slots. */
export interface AdvancedOk {
  n: number | null;
  planner: number | null;
  slots: number | null;
}

/** `ok N12 P15 B3` → its fields; null: a plain ok. */
export function parseAdvancedOk(line: string): AdvancedOk | null {
  const m = /^ok(?:\s+N(\d+))?(?:\s+P(\d+))?(?:\s+B(\d+))?\s*$/.exec(line);
  if (!m || (m[1] === undefined && m[3] === undefined)) return null;
  return { n: m[1] === undefined ? null : Number(m[1]), planner: m[2] === undefined ? null : Number(m[2]), slots: m[3] === undefined ? null : Number(m[3]) };
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
  /** Bytes on the wire, line end included. */
  bytes: number;
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
  readonly stats: LineProtocolStats = { linesSent: 0, linesAcked: 0, resends: 0, ignoredResends: 0, timeouts: 0, lineErrors: 0, maxInFlight: 0 };
  private lineNo = 0;
  /** Sent and not acknowledged yet, oldest first. */
  private inflight: Inflight[] = [];
  private readonly queue: Queued[] = [];
  private readonly history = new Map<number, string>();
  private consecutiveResends = 0;
  private consecutiveTimeouts = 0;
  /** Set between a `Resend:` and the `ok` that Marlin sends after it (one line in flight). */
  private swallowOk: { timer: NodeJS.Timeout } | null = null;
  /** Learned: does this firmware follow `Resend:` with an `ok`? (Older Marlin and RRF do not.) */
  private resendHasOk = true;
  private timer: NodeJS.Timeout | null = null;
  /** Something (an auto-report too) was heard since the timer was armed. */
  private heard = false;
  private open = false;
  /** The firmware said ADVANCED_OK in its capabilities. */
  private advanced = false;
  /** Free command slots the last numbered ok reported; null: no such ok yet (one line in flight). */
  private slotsFree: number | null = null;
  /** After rewinding to a resend request's line: that line, and how many lines sent before the rewind may still ask for it. */
  private rewound: { n: number; stale: number } | null = null;
  /** An M105 poke is out: the ok that answers it acknowledges whatever is in flight. */
  private poked = false;

  constructor(
    private readonly opts: LineProtocolOptions,
    private readonly hooks: LineProtocolHooks,
  ) {}

  get idle(): boolean {
    return this.inflight.length === 0 && this.queue.length === 0;
  }

  /** Lines in flight now. */
  get inFlight(): number {
    return this.inflight.length;
  }

  /**
   * The firmware says ADVANCED_OK (M115 `Cap:ADVANCED_OK:1`): once its oks carry the line and the
   * free slots, several lines go in flight. Off, or until then, one at a time.
   */
  setAdvancedOk(on: boolean): void {
    this.advanced = on;
    if (!on) this.slotsFree = null;
  }

  /** Several lines may be in flight now. */
  get windowed(): boolean {
    return this.advanced && this.slotsFree !== null;
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
    const dropped = { inflight: this.inflight[0] ?? null, queued: [...this.inflight.slice(1), ...this.queue.splice(0)] };
    this.inflight = [];
    this.history.clear();
    this.consecutiveResends = this.consecutiveTimeouts = 0;
    this.slotsFree = null;
    this.rewound = null;
    this.poked = false;
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
   * the timeout that recovers a lost `ok`. `adv`: what an ADVANCED_OK `ok` said.
   */
  onLine(isOk: boolean, resend: number | null, isLineError: boolean, answering: boolean, adv: AdvancedOk | null = null, okLine = ''): void {
    this.heard = true;
    if (answering) {
      this.armTimer();
      this.consecutiveTimeouts = 0;
    }
    if (isLineError) {
      this.stats.lineErrors++;
      return;
    }
    if (resend !== null) return this.windowed ? this.onResendWindowed(resend) : this.onResend(resend);
    if (!isOk) return;
    if (this.advanced && adv?.n != null) return this.onNumberedOk(adv);
    if (this.swallowOk) {
      clearTimeout(this.swallowOk.timer);
      this.swallowOk = null;
      return this.pump();
    }
    const head = this.inflight[0];
    if (!head) return; // an ok for an unnumbered M105 poke
    if (this.windowed && head.n !== null) {
      // Streaming, an ok without a line number: the ok after a resend request (ignored),
      // M105's own (`ok T:…`, which Marlin prints without the line), or the answer to a poke.
      if (this.poked) {
        this.poked = false;
        while (this.inflight.length) this.acknowledge(this.inflight.shift()!);
        return this.pump();
      }
      if (/^M105\b/.test(head.line) && /\bT:/.test(okLine)) this.acknowledge(this.inflight.shift()!);
      return this.pump();
    }
    this.poked = false;
    this.acknowledge(this.inflight.shift()!);
    this.pump();
  }

  /** `ok N<n>`: every line up to n is acknowledged (an ok lost on the way is made up by the next). */
  private onNumberedOk(adv: AdvancedOk): void {
    if (adv.slots !== null) this.slotsFree = adv.slots;
    if (this.swallowOk) {
      clearTimeout(this.swallowOk.timer);
      this.swallowOk = null;
    }
    while (this.inflight.length && (this.inflight[0]!.n === null || this.inflight[0]!.n <= adv.n!)) this.acknowledge(this.inflight.shift()!);
    if (this.rewound && adv.n! >= this.rewound.n) this.rewound = null;
    this.poked = false;
    this.pump();
  }

  private acknowledge(done: Inflight): void {
    this.consecutiveResends = 0;
    this.stats.linesAcked++;
    if (done.n !== null) {
      this.history.set(done.n, done.line);
      this.history.delete(done.n - HISTORY);
    }
    done.onAck?.();
  }

  /**
   * The printer wants line `n` next. Usually that is the line in flight (it arrived damaged);
   * it can be an earlier one whose `ok` we took from an M105 poke. A request for a line not
   * sent yet or no longer kept is stale, so is one while an unnumbered line is in flight (it
   * belongs to the session before), and one that arrives while we are still answering the
   * previous request is a repeat: all are ignored.
   */
  private onResend(n: number): void {
    const cur = this.inflight[0];
    if (cur === undefined || cur.n === null || n > cur.n || (n < cur.n && !this.history.has(n)) || this.swallowOk) {
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
    this.inflight = [];
    this.lineNo = n - 1;
    this.stats.resends += replay.length + 1;
    if (!this.resendHasOk || this.windowed) return this.pump();
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

  /**
   * A resend request with several lines in flight. Marlin took every line before n (their oks
   * come as it works through them) and dropped n and whatever its receive buffer held after it;
   * each line after n that still arrives draws another request for n. So: lines n.. go back
   * to the head of the queue, with their callbacks (never acknowledged), and are sent again in
   * order, one at a time until the printer took n (the lines sent before the rewind may still be
   * on their way into its receive buffer); the requests they draw are ignored. A line before the
   * oldest in flight, acknowledged by a poke, is replayed from the history without its callback.
   */
  private onResendWindowed(n: number): void {
    if (this.inflight.length === 0) {
      this.stats.ignoredResends++;
      return;
    }
    if (this.rewound && this.rewound.n === n && this.rewound.stale > 0) {
      this.rewound.stale--;
      this.stats.ignoredResends++;
      return;
    }
    const first = this.inflight[0]!;
    const idx = this.inflight.findIndex((l) => l.n === n);
    const fromHistory = idx < 0 && first.n !== null && n < first.n && Array.from({ length: first.n - n }, (_, i) => n + i).every((k) => this.history.has(k));
    if (idx < 0 && !fromHistory) {
      this.stats.ignoredResends++;
      return;
    }
    if (++this.consecutiveResends > this.opts.maxConsecutiveResends) {
      return this.hooks.giveUp(`${this.consecutiveResends - 1} consecutive resend requests (line ${n})`);
    }
    const replay: Command[] = [];
    if (fromHistory) for (let k = n; k < first.n!; k++) replay.push({ line: this.history.get(k)! });
    const back = this.inflight.splice(Math.max(0, idx));
    this.queue.unshift(...replay, ...back.map((l) => ({ line: l.line, onAck: l.onAck })));
    this.lineNo = n - 1;
    this.rewound = { n, stale: Math.max(0, back.length - 1) };
    this.stats.resends += replay.length + back.length;
    this.pump();
  }

  /** How many lines may be in flight, and whether one more of `bytes` fits the printer's receive buffer. */
  private roomFor(next: Queued): boolean {
    if (this.inflight.length === 0) return true;
    if (!this.windowed || next.unnumbered || this.inflight[0]!.n === null) return false;
    // After a rewind the lines sent before it may still be on their way into the receive buffer:
    // the line asked for goes alone (those before it are in the printer's queue, not its buffer)
    // until the printer took it.
    const rewound = this.rewound;
    if (rewound) return !this.inflight.some((l) => l.n !== null && l.n >= rewound.n);
    if (this.inflight.length >= this.slotsFree!) return false;
    const rx = (this.opts.rxBufferBytes ?? 128) - 1;
    const held = this.inflight.reduce((a, l) => a + l.bytes, 0);
    return held + numbered(this.lineNo + 1, next.line).length + 1 <= rx;
  }

  private pump(): void {
    if (!this.open || this.swallowOk) return;
    for (;;) {
      if (this.inflight.length && !this.windowed) return;
      let next: Queued | null = this.queue[0] ?? null;
      let pulled = false;
      if (!next) {
        next = this.hooks.pull();
        pulled = true;
        if (!next) return;
      }
      if (!this.roomFor(next)) {
        if (pulled) this.queue.unshift(next);
        return;
      }
      if (!pulled) this.queue.shift();
      const n = next.unnumbered ? null : ++this.lineNo;
      const text = (n === null ? next.line : numbered(n, next.line)) + '\n';
      const l: Inflight = { line: next.line, onAck: next.onAck, n, bytes: text.length };
      this.inflight.push(l);
      this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.inflight.length);
      this.transmit(text);
    }
  }

  private transmit(text: string): void {
    this.stats.linesSent++;
    this.hooks.write(text);
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
    this.poked = this.inflight.length > 0;
    this.hooks.write('M105\n');
    this.armTimer();
    if (silent) this.hooks.silent();
  }
}
