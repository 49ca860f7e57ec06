/** The Marlin line protocol's resend and timeout rules, driven line by line. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LineProtocol, numbered, parseAdvancedOk } from '../gateway/src/devices/printer/line-protocol.js';

function setup(lines: string[]) {
  const written: string[] = [];
  const acked: string[] = [];
  const gaveUp: string[] = [];
  let silences = 0;
  let next = 0;
  const p = new LineProtocol(
    { maxConsecutiveResends: 3, communicationMs: 1000, maxConsecutiveTimeouts: 2 },
    {
      write: (t) => written.push(t.trim()),
      pull: () => (next < lines.length ? { line: lines[next]!, onAck: ((l) => () => acked.push(l))(lines[next++]!) } : null),
      giveUp: (why) => gaveUp.push(why),
      silent: () => silences++,
    },
  );
  const ok = () => p.onLine(true, null, false, true);
  const resend = (n: number) => {
    p.onLine(false, null, true, true); // Error:checksum mismatch…
    p.onLine(false, n, false, true); // Resend: n
  };
  return { p, written, acked, gaveUp, ok, resend, silences: () => silences };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('line protocol', () => {
  it('numbers and checksums lines, one in flight, starting with M110 N0', () => {
    const t = setup(['G1 E1', 'G1 E2']);
    t.p.begin();
    expect(t.written).toEqual([numbered(0, 'M110 N0')]);
    t.ok();
    expect(t.written.at(-1)).toBe('N1 G1 E1*' + [...'N1 G1 E1'].reduce((a, c) => a ^ c.charCodeAt(0), 0));
    t.ok();
    t.ok();
    expect(t.acked).toEqual(['G1 E1', 'G1 E2']);
  });

  it('answers a resend request for the line in flight once, swallowing the ok that follows it', () => {
    const t = setup(['G1 E1', 'G1 E2']);
    t.p.begin();
    t.ok(); // M110
    t.resend(1);
    t.ok(); // the ok after Resend: not an acknowledgement
    expect(t.written.slice(-2)).toEqual([numbered(1, 'G1 E1'), numbered(1, 'G1 E1')]);
    expect(t.acked).toEqual([]);
    t.ok();
    expect(t.acked).toEqual(['G1 E1']);
    expect(t.p.stats).toMatchObject({ resends: 1, lineErrors: 1 });
  });

  it('ignores stale requests (a line not sent yet) and repeats while one is being answered', () => {
    const t = setup(['G1 E1']);
    t.p.begin();
    t.ok();
    t.p.onLine(false, 5, false, true); // stale: line 5 was never sent
    t.resend(1);
    t.p.onLine(false, 1, false, true); // a repeat before the ok that follows the first
    t.ok();
    expect(t.written.filter((w) => w.startsWith('N1 ')).length).toBe(2);
    expect(t.p.stats.ignoredResends).toBe(2);
  });

  it('replays from an earlier line whose ok came from an M105 poke, metering it once', () => {
    const t = setup(['G1 E1', 'G1 E2', 'G1 E3']);
    t.p.begin();
    t.ok(); // M110
    // N1 is lost on the way; silence; the poke's ok is taken for N1.
    vi.advanceTimersByTime(1000);
    expect(t.written.at(-1)).toBe('M105');
    t.ok();
    expect(t.written.at(-1)).toBe(numbered(2, 'G1 E2'));
    t.resend(1); // the printer wants N1: it never had it
    t.ok();
    expect(t.written.slice(-2)).toEqual([numbered(2, 'G1 E2'), numbered(1, 'G1 E1')]);
    t.ok();
    expect(t.written.at(-1)).toBe(numbered(2, 'G1 E2'));
    t.ok();
    t.ok();
    expect(t.acked).toEqual(['G1 E1', 'G1 E2', 'G1 E3']);
  });

  it('learns that a firmware sends no ok after a resend request', () => {
    const t = setup(['G1 E1', 'G1 E2']);
    t.p.begin();
    t.ok();
    t.resend(1);
    vi.advanceTimersByTime(200); // no ok came: resend anyway
    expect(t.written.at(-1)).toBe(numbered(1, 'G1 E1'));
    t.ok();
    t.resend(2);
    expect(t.written.at(-1)).toBe(numbered(2, 'G1 E2')); // at once, this time
  });

  it('starts afresh with a line sent unnumbered ahead of M110 N0 (M999 to a halted printer), not behind the line in flight', () => {
    const t = setup(['G1 E1', 'G1 E2']);
    t.p.begin();
    t.ok(); // M110
    expect(t.written.at(-1)).toBe(numbered(1, 'G1 E1')); // in flight when the printer halts: never acknowledged
    t.p.begin({ line: 'M999', onAck: () => t.acked.push('M999') });
    expect(t.written.at(-1)).toBe('M999');
    t.p.onLine(false, 1, false, true); // Resend: 1, M999's request for the old session
    t.ok(); // M999
    expect(t.written.at(-1)).toBe(numbered(0, 'M110 N0'));
    t.ok();
    expect(t.written.at(-1)).toBe(numbered(1, 'G1 E2'));
    t.ok();
    expect(t.acked).toEqual(['M999', 'G1 E2']);
    expect(t.p.stats.ignoredResends).toBe(1);
  });

  it('gives up after a bounded run of resends or timeouts', () => {
    const t = setup(['G1 E1']);
    t.p.begin();
    t.ok();
    for (let i = 0; i < 4; i++) {
      t.resend(1);
      t.ok();
    }
    expect(t.gaveUp).toEqual(['3 consecutive resend requests (line 1)']);

    const u = setup(['G1 E1']);
    u.p.begin();
    vi.advanceTimersByTime(1000);
    expect(u.silences()).toBe(1); // not a word since M110 N0
    u.p.onLine(false, null, false, false); // an auto-report does not count as an answer…
    vi.advanceTimersByTime(1000);
    expect(u.gaveUp).toEqual(['2 consecutive timeouts of 1000 ms']);
    expect(u.silences()).toBe(1); // …but the printer is not silent
  });
});

describe('line protocol with ADVANCED_OK', () => {
  const adv = (t: ReturnType<typeof setup>, n: number, slots = 3) => t.p.onLine(true, null, false, true, { n, planner: 15, slots }, `ok N${n} P15 B${slots}`);

  it('reads ok N<line> P<blocks> B<slots>, and nothing else', () => {
    expect(parseAdvancedOk('ok N12 P15 B3')).toEqual({ n: 12, planner: 15, slots: 3 });
    expect(parseAdvancedOk('ok P15 B3')).toEqual({ n: null, planner: 15, slots: 3 });
    expect(parseAdvancedOk('ok')).toBeNull();
    expect(parseAdvancedOk('ok T:210.00 /210.00')).toBeNull();
  });

  it('keeps as many lines in flight as the slots the last ok reported, acknowledged by line number', () => {
    const t = setup(['G1 E1', 'G1 E2', 'G1 E3', 'G1 E4', 'G1 E5']);
    t.p.setAdvancedOk(true);
    t.p.begin();
    adv(t, 0, 3); // M110's ok opens the window
    expect(t.written.slice(1)).toEqual([1, 2, 3].map((n) => numbered(n, `G1 E${n}`)));
    adv(t, 2, 3); // the ok of line 1 was lost: line 2's acknowledges both
    expect(t.acked).toEqual(['G1 E1', 'G1 E2']);
    expect(t.p.inFlight).toBe(3);
    t.ok(); // a plain ok (after a resend request, say) acknowledges nothing
    expect(t.acked).toHaveLength(2);
    adv(t, 5, 3);
    expect(t.acked).toEqual(['G1 E1', 'G1 E2', 'G1 E3', 'G1 E4', 'G1 E5']);
  });

  it('never puts more bytes in flight than the receive buffer holds', () => {
    const long = 'G1 X100.123 Y100.456 E12.34567 F1800 ; a long move';
    const written: string[] = [];
    const p = new LineProtocol({ maxConsecutiveResends: 3, communicationMs: 1000, maxConsecutiveTimeouts: 2, rxBufferBytes: 128 }, { write: (x) => written.push(x), pull: () => ({ line: long }), giveUp: () => {}, silent: () => {} });
    p.setAdvancedOk(true);
    p.begin();
    p.onLine(true, null, false, true, { n: 0, planner: 15, slots: 8 }, 'ok N0 P15 B8');
    const inFlight = written.slice(1).join('');
    expect(inFlight.length).toBeLessThanOrEqual(127);
    expect(p.inFlight).toBe(2);
  });

  it('a resend request with a window in flight sends the lines from n again once, in order, and ignores the requests the old ones draw', () => {
    const t = setup(['G1 E1', 'G1 E2', 'G1 E3', 'G1 E4', 'G1 E5', 'G1 E6']);
    t.p.setAdvancedOk(true);
    t.p.begin();
    adv(t, 0, 3); // lines 1, 2, 3 in flight
    // line 2 arrived damaged; line 3, still on its way, draws a second request for 2
    t.resend(2);
    expect(t.written.at(-1)).toBe(numbered(2, 'G1 E2'));
    expect(t.p.inFlight).toBe(2); // 1 (taken by the printer) and 2 again; one at a time after a rewind
    t.resend(2); // drawn by the old line 3: ignored
    expect(t.p.stats.ignoredResends).toBe(1);
    adv(t, 1, 2);
    adv(t, 2, 2); // the printer took 2: the window opens again
    expect(t.written.slice(-2)).toEqual([numbered(3, 'G1 E3'), numbered(4, 'G1 E4')]);
    adv(t, 4, 3);
    adv(t, 6, 3);
    expect(t.acked).toEqual(['G1 E1', 'G1 E2', 'G1 E3', 'G1 E4', 'G1 E5', 'G1 E6']);
    // every line went out once, and 2 and 3 once more after the request (3 only after 2 was taken)
    const sent = t.written.slice(1).map((l) => Number(/^N(\d+)/.exec(l)![1]));
    expect(sent).toEqual([1, 2, 3, 2, 3, 4, 5, 6]);
  });

  it('falls back to one line in flight without the capability, even when oks carry the line', () => {
    const t = setup(['G1 E1', 'G1 E2', 'G1 E3']);
    t.p.begin();
    adv(t, 0, 3);
    expect(t.p.inFlight).toBe(1);
    adv(t, 1, 3);
    expect(t.p.inFlight).toBe(1);
    expect(t.acked).toEqual(['G1 E1']);
  });
});
