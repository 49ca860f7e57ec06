import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../gateway/src/access/decide.js';
import { IDLE, step, type SessionInput, type SessionOutput, type SessionRules, type ToolSession } from '../gateway/src/sessions/machine.js';

const rules: SessionRules = { idleTimeoutMs: 600_000, maxDurationMs: 4 * 3600_000, warnBeforeOffMs: 60_000, relayConfirmMs: 2_000 };
const grant = (a = 'ada'): SessionInput => ({ type: 'decision', decision: { kind: 'grant', affiliateId: a } });
const badgeOut = (a = 'ada'): SessionInput => ({ type: 'decision', decision: { kind: 'badge-out', affiliateId: a } });

/** Runs inputs at given times; returns the final state and every output with its time. */
function run(inputs: [number, SessionInput][], start: ToolSession = IDLE) {
  let state = start;
  const out: (SessionOutput & { t: number })[] = [];
  for (const [t, input] of inputs) {
    const r = step(state, input, t, rules);
    state = r.state;
    out.push(...r.out.map((o) => ({ ...o, t })));
  }
  return { state, out, types: out.map((o) => o.type) };
}

describe('session state machine', () => {
  it('starts when the relay is confirmed on, ends on badge-out', () => {
    const r = run([
      [0, grant()],
      [150, { type: 'relay', on: true }],
      [60_000, badgeOut()],
    ]);
    expect(r.types).toEqual(['relay', 'indicate', 'session-started', 'relay', 'session-ended']);
    expect(r.out[2]).toMatchObject({ at: 150 });
    expect(r.out[4]).toMatchObject({ reason: 'badge-out', startedAt: 150, at: 60_000 });
    expect(r.state.phase).toBe('idle');
  });

  it('gives up and switches off when the relay never confirms', () => {
    const r = run([
      [0, grant()],
      [1_000, { type: 'tick' }],
      [2_000, { type: 'tick' }],
    ]);
    expect(r.types).toEqual(['relay', 'indicate', 'relay', 'indicate']);
    expect(r.out.at(-1)).toMatchObject({ pattern: 'error', text: 'relay-failed' });
  });

  it('never cuts power while the tool is busy: a badge-out is deferred with a warning until the print ends', () => {
    const r = run([
      [0, grant()],
      [100, { type: 'relay', on: true }],
      [200, { type: 'busy', busy: true }],
      [1_000, badgeOut()],
      [5_000, { type: 'tick' }],
      [9_000, { type: 'busy', busy: false }],
    ]);
    expect(r.types).toEqual(['relay', 'indicate', 'session-started', 'end-deferred', 'indicate', 'relay', 'session-ended']);
    expect(r.out.at(-1)).toMatchObject({ reason: 'badge-out', at: 9_000 });
  });

  it('idle timeout warns first, then switches off; busy in between keeps it on', () => {
    const idle = rules.idleTimeoutMs;
    const r = run([
      [0, grant()],
      [0, { type: 'relay', on: true }],
      [idle, { type: 'tick' }],
      [idle + rules.warnBeforeOffMs - 1, { type: 'tick' }],
      [idle + rules.warnBeforeOffMs, { type: 'tick' }],
    ]);
    expect(r.types).toEqual(['relay', 'indicate', 'session-started', 'end-deferred', 'indicate', 'relay', 'session-ended']);
    expect(r.out.at(-1)).toMatchObject({ reason: 'idle-timeout' });
  });

  it('hands over without switching off: one session ends as the next begins', () => {
    const handover: SessionInput = { type: 'decision', decision: { kind: 'handover', from: 'ada', to: 'bo' } };
    const r = run([
      [0, grant()],
      [0, { type: 'relay', on: true }],
      [5_000, handover],
    ]);
    expect(r.out.filter((o) => o.type === 'relay')).toHaveLength(1);
    expect(r.out.slice(-3)).toMatchObject([
      { type: 'session-ended', affiliateId: 'ada', reason: 'handover' },
      { type: 'session-started', affiliateId: 'bo', at: 5_000 },
      { type: 'indicate', pattern: 'granted' },
    ]);
  });

  it('a fault or a maintainer ends the session at once, busy or not', () => {
    for (const input of [{ type: 'fault', text: 'thermal runaway' }, { type: 'force-stop', by: 'maintainer' }] as SessionInput[]) {
      const r = run([
        [0, grant()],
        [0, { type: 'relay', on: true }],
        [10, { type: 'busy', busy: true }],
        [20, input],
      ]);
      expect(r.types.slice(-2)).toEqual(['relay', 'session-ended']);
    }
  });

  it('denials only give feedback', () => {
    const deny: SessionInput = { type: 'decision', decision: { kind: 'deny', reason: 'not-qualified', affiliateId: 'di' } };
    expect(run([[0, deny]]).out).toEqual([{ type: 'indicate', pattern: 'denied', text: 'not-qualified', t: 0 }]);
  });

  it('for any inputs: power is off whenever no session runs, never cut while busy except by fault or force, sessions alternate (property)', () => {
    const decision = fc.constantFrom<Decision>(
      { kind: 'grant', affiliateId: 'ada' },
      { kind: 'badge-out', affiliateId: 'ada' },
      { kind: 'handover', from: 'ada', to: 'bo' },
      { kind: 'badge-out', affiliateId: 'bo' },
      { kind: 'deny', reason: 'unknown-badge', affiliateId: null },
    );
    const input = fc.oneof(
      decision.map((d): SessionInput => ({ type: 'decision', decision: d })),
      fc.boolean().map((on): SessionInput => ({ type: 'relay', on })),
      fc.boolean().map((busy): SessionInput => ({ type: 'busy', busy })),
      fc.constant<SessionInput>({ type: 'tick' }),
      fc.constant<SessionInput>({ type: 'fault', text: 'x' }),
      fc.constant<SessionInput>({ type: 'force-stop', by: 'm' }),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 900_000 }), input), { maxLength: 60 }), (steps) => {
        let state: ToolSession = IDLE;
        let t = 0;
        let open = 0;
        for (const [dt, inp] of steps) {
          t += dt;
          // busy through the input: a busy=false input ends the busy spell it would be cut in
          const busyThrough = state.busy && !(inp.type === 'busy' && !inp.busy);
          const r = step(state, inp, t, rules);
          for (const o of r.out) {
            if (o.type === 'relay' && !o.on && state.phase === 'running' && busyThrough) expect(['fault', 'force-stop', 'relay']).toContain(inp.type);
            if (o.type === 'session-started') open++;
            if (o.type === 'session-ended') open--;
            expect(open === 0 || open === 1).toBe(true);
          }
          state = r.state;
          expect(open).toBe(state.phase === 'running' ? 1 : 0);
        }
      }),
      { numRuns: 500 },
    );
  });
});
