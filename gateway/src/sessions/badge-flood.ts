/**
 * A badge flood (a faulty reader, a replay attack) is cut to MAX_DECISIONS_PER_S decisions per
 * second and tool; a person taps far slower. Pure: one-second windows over monotonic time (ms).
 */
export const MAX_DECISIONS_PER_S = 20;

export interface BadgeWindow {
  start: number;
  count: number;
}

/**
 * Ends the window once its second is over (its count starts again), at the next badge or at
 * the next tick when a flood stops and no badge follows; `dropped` is how many it refused.
 */
export function endWindow(w: BadgeWindow, now: number): { window: BadgeWindow; over: boolean; dropped: number } {
  if (now - w.start < 1000) return { window: w, over: false, dropped: 0 };
  return { window: { start: w.start, count: 0 }, over: true, dropped: Math.max(0, w.count - MAX_DECISIONS_PER_S) };
}

/** Counts a badge at `now`: whether it is decided, and what the window it ended dropped. */
export function countBadge(w: BadgeWindow, now: number): { window: BadgeWindow; admitted: boolean; dropped: number } {
  const ended = endWindow(w, now);
  const window = { start: ended.over ? now : w.start, count: ended.window.count + 1 };
  return { window, admitted: window.count <= MAX_DECISIONS_PER_S, dropped: ended.dropped };
}
