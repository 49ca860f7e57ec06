/**
 * One tool's usage session as a pure state machine: inputs (access decisions, the sensed
 * relay, the busy signal, time, faults, a maintainer's stop) in, commands and events out.
 * Times are monotonic milliseconds supplied by the caller. Rule zero: power is never cut
 * while the tool reports busy (a print in progress) except for a fault or a maintainer's
 * forced stop; otherwise the end is deferred, with a warning.
 */
import type { Decision } from '../access/decide.js';

export type EndReason =
  | 'badge-out'
  | 'handover'
  | 'idle-timeout'
  | 'max-duration'
  | 'force-stop'
  | 'fault'
  | 'relay-failed'
  /** The gateway stopped cleanly while the tool was not busy. */
  | 'gateway-stopped'
  /** The gateway was not running when the session should have gone on (crash, power cut): closed at the next start. */
  | 'interrupted';

export interface SessionRules {
  /** No busy signal for this long ends the session. */
  idleTimeoutMs: number;
  /** A session never runs longer than this (deferred while busy). */
  maxDurationMs: number;
  /** Warning given before an automatic switch-off. */
  warnBeforeOffMs: number;
  /** The relay must confirm within this after being switched on. */
  relayConfirmMs: number;
}

interface Running {
  phase: 'running';
  affiliateId: string;
  startedAt: number;
  busy: boolean;
  lastBusyAt: number;
  /** An end waiting for its warning to run out or for the tool to stop being busy. */
  pendingEnd: { reason: EndReason; offAt: number } | null;
}

export type ToolSession = { phase: 'idle'; busy: boolean } | { phase: 'starting'; affiliateId: string; requestedAt: number; busy: boolean } | Running;

export type SessionInput =
  | { type: 'decision'; decision: Decision }
  | { type: 'relay'; on: boolean }
  | { type: 'busy'; busy: boolean }
  | { type: 'tick' }
  | { type: 'fault'; text: string }
  | { type: 'force-stop'; by: string }
  /** After a restart, a session interrupted while the tool was busy goes on for the same affiliate, the relay still on. */
  | { type: 'resume'; affiliateId: string }
  /** The gateway is stopping: an idle tool is switched off and its session ended; a busy one keeps running. */
  | { type: 'shutdown' };

export type SessionOutput =
  | { type: 'relay'; on: boolean; reason: 'session-start' | EndReason }
  | { type: 'indicate'; pattern: 'granted' | 'denied' | 'warning' | 'error'; text: string }
  | { type: 'session-started'; affiliateId: string; at: number }
  | { type: 'session-ended'; affiliateId: string; reason: EndReason; startedAt: number; at: number }
  /** A technician's help at the running session starts or stops (the shell keeps the time). */
  | { type: 'technician'; affiliateId: string }
  /** An end is coming at `offAt`, or later if the tool is still busy then. */
  | { type: 'end-deferred'; affiliateId: string; reason: EndReason; offAt: number; busy: boolean };

export const IDLE: ToolSession = { phase: 'idle', busy: false };

interface Step {
  state: ToolSession;
  out: SessionOutput[];
}

export function step(state: ToolSession, input: SessionInput, now: number, rules: SessionRules): Step {
  if (input.type === 'busy') return onBusy(state, input.busy, now);
  switch (state.phase) {
    case 'idle':
      return onIdle(state, input, now);
    case 'starting':
      return onStarting(state, input, now, rules);
    case 'running':
      return onRunning(state, input, now, rules);
  }
}

const deny = (d: Extract<Decision, { kind: 'deny' }>): SessionOutput => ({ type: 'indicate', pattern: 'denied', text: d.reason });

function onIdle(state: Extract<ToolSession, { phase: 'idle' }>, input: SessionInput, now: number): Step {
  if (input.type === 'resume') {
    return {
      state: { phase: 'running', affiliateId: input.affiliateId, startedAt: now, busy: state.busy, lastBusyAt: now, pendingEnd: null },
      out: [{ type: 'session-started', affiliateId: input.affiliateId, at: now }],
    };
  }
  if (input.type !== 'decision') return { state, out: [] };
  const d = input.decision;
  if (d.kind === 'deny') return { state, out: [deny(d)] };
  if (d.kind !== 'grant') return { state, out: [] }; // a badge-out or handover for a session that is not open
  return {
    state: { phase: 'starting', affiliateId: d.affiliateId, requestedAt: now, busy: state.busy },
    out: [{ type: 'relay', on: true, reason: 'session-start' }, { type: 'indicate', pattern: 'granted', text: d.affiliateId }],
  };
}

function onStarting(state: Extract<ToolSession, { phase: 'starting' }>, input: SessionInput, now: number, rules: SessionRules): Step {
  // The session starts when the relay is confirmed on, not when it was asked to switch.
  if (input.type === 'relay' && input.on) {
    return {
      state: { phase: 'running', affiliateId: state.affiliateId, startedAt: now, busy: state.busy, lastBusyAt: now, pendingEnd: null },
      out: [{ type: 'session-started', affiliateId: state.affiliateId, at: now }],
    };
  }
  if (input.type === 'tick' && now - state.requestedAt >= rules.relayConfirmMs) {
    return { state: { phase: 'idle', busy: state.busy }, out: [{ type: 'relay', on: false, reason: 'relay-failed' }, { type: 'indicate', pattern: 'error', text: 'relay-failed' }] };
  }
  if (input.type === 'decision' && input.decision.kind === 'deny') return { state, out: [deny(input.decision)] };
  return { state, out: [] };
}

function onRunning(s: Running, input: SessionInput, now: number, rules: SessionRules): Step {
  switch (input.type) {
    case 'decision': {
      const d = input.decision;
      if (d.kind === 'deny') return { state: s, out: [deny(d)] };
      if (d.kind === 'badge-out' && d.affiliateId === s.affiliateId) return requestEnd(s, 'badge-out', now, now);
      if (d.kind === 'technician') return { state: s, out: [{ type: 'technician', affiliateId: d.affiliateId }, { type: 'indicate', pattern: 'granted', text: d.affiliateId }] };
      if (d.kind === 'handover' && d.from === s.affiliateId) {
        // The relay stays on: one session ends and the next begins at the same instant.
        return {
          state: { ...s, affiliateId: d.to, startedAt: now, lastBusyAt: now, pendingEnd: null },
          out: [
            { type: 'session-ended', affiliateId: s.affiliateId, reason: 'handover', startedAt: s.startedAt, at: now },
            { type: 'session-started', affiliateId: d.to, at: now },
            { type: 'indicate', pattern: 'granted', text: d.to },
          ],
        };
      }
      return { state: s, out: [] };
    }
    case 'relay':
      // The contact opened by itself (a local button, overcurrent, a node reboot): the session is over.
      return input.on ? { state: s, out: [] } : end(s, 'relay-failed', now);
    case 'fault':
      return end(s, 'fault', now);
    case 'force-stop':
      return end(s, 'force-stop', now);
    case 'shutdown':
      return s.busy ? { state: s, out: [] } : end(s, 'gateway-stopped', now);
    case 'tick': {
      if (s.pendingEnd) return s.busy || now < s.pendingEnd.offAt ? { state: s, out: [] } : end(s, s.pendingEnd.reason, now);
      if (!s.busy && now - s.lastBusyAt >= rules.idleTimeoutMs) return requestEnd(s, 'idle-timeout', now, now + rules.warnBeforeOffMs);
      if (now - s.startedAt >= rules.maxDurationMs) return requestEnd(s, 'max-duration', now, now + rules.warnBeforeOffMs);
      return { state: s, out: [] };
    }
    default:
      return { state: s, out: [] };
  }
}

function onBusy(state: ToolSession, busy: boolean, now: number): Step {
  if (state.phase !== 'running') return { state: { ...state, busy }, out: [] };
  const s: Running = { ...state, busy, lastBusyAt: busy || state.busy ? now : state.lastBusyAt };
  // A deferred end goes ahead once the tool is no longer busy (its warning already given).
  if (!busy && s.pendingEnd && now >= s.pendingEnd.offAt) return end(s, s.pendingEnd.reason, now);
  return { state: s, out: [] };
}

/** Ends now if allowed (not busy, no warning due), or defers with a warning. */
function requestEnd(s: Running, reason: EndReason, now: number, offAt: number): Step {
  if (!s.busy && offAt <= now) return end(s, reason, now);
  return {
    state: { ...s, pendingEnd: { reason, offAt } },
    out: [
      { type: 'end-deferred', affiliateId: s.affiliateId, reason, offAt, busy: s.busy },
      { type: 'indicate', pattern: 'warning', text: s.busy ? `${reason}: switching off when the tool is no longer busy` : `${reason}: switching off soon` },
    ],
  };
}

function end(s: Running, reason: EndReason, now: number): Step {
  return {
    state: { phase: 'idle', busy: s.busy },
    out: [
      { type: 'relay', on: false, reason },
      { type: 'session-ended', affiliateId: s.affiliateId, reason, startedAt: s.startedAt, at: now },
    ],
  };
}
