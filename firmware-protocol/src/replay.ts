/**
 * Duplicate and replay suppression over a window of recent sequence numbers (PROTOCOL.md §7),
 * as plain data: a window in, a verdict and the next window out. `top` is the newest seq seen;
 * bit i of `seen` says whether seq `top - i` was seen, for i below REPLAY_WINDOW.
 */

/** How many sequence numbers, counting back from the newest, a receiver remembers. */
export const REPLAY_WINDOW = 32;

export interface ReplayWindow {
  top: number;
  seen: number;
}

/**
 * - `new`: not seen: act on it;
 * - `duplicate`: seen within the window (a retransmission, or a replay of a recent frame);
 * - `old`: further back than the window. From a peer whose sequence space is known (the node,
 *   within one boot) it is a replay; a node receiving from the gateway treats it as new, since
 *   the gateway numbers from a random value each time it opens the port.
 */
export type ReplayVerdict = 'new' | 'duplicate' | 'old';

/** The verdict on `seq` (u16), and the window after it; `window` null: the first frame of a sequence space. */
export function replayCheck(window: ReplayWindow | null, seq: number): { verdict: ReplayVerdict; window: ReplayWindow } {
  if (window === null) return { verdict: 'new', window: { top: seq, seen: 1 } };
  const ahead = (seq - window.top) & 0xffff;
  if (ahead === 0) return { verdict: 'duplicate', window };
  if (ahead < 0x8000) {
    // newer: the window slides forward, forgetting what falls out of it
    const seen = ahead >= REPLAY_WINDOW ? 1 : ((window.seen << ahead) | 1) >>> 0;
    return { verdict: 'new', window: { top: seq, seen } };
  }
  const back = (window.top - seq) & 0xffff;
  if (back >= REPLAY_WINDOW) return { verdict: 'old', window };
  const bit = (1 << back) >>> 0;
  if ((window.seen & bit) !== 0) return { verdict: 'duplicate', window };
  return { verdict: 'new', window: { top: window.top, seen: (window.seen | bit) >>> 0 } };
}
