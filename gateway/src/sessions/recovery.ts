/**
 * After a crash or a power cut, pure: the sessions the journal shows open are closed as
 * `interrupted` with the usage of their last checkpoint, and the tool is made safe once its
 * relay and whether it is busy are known.
 */
import type { StartedSession } from './projection.js';
import type { CheckpointRow } from './session-store.js';
import type { Checkpoint, Meters, SessionUsage } from './usage.js';

/** What a new session continues from when the tool is still busy with an interrupted one. */
export interface Resume {
  fromSessionId: string;
  affiliateId: string;
  useType: string;
  meters: Meters | null;
}

/** Closes each open session with its last checkpoint (or nothing used); the newest is the one a resumed session continues. */
export function closeInterrupted(open: readonly { started: StartedSession; checkpoint: CheckpointRow<Checkpoint> | null }[]) {
  const ended = open.map(({ started: s, checkpoint: cp }) => {
    const usage: SessionUsage = cp?.data.usage ?? {
      ...s,
      endedAt: null,
      clockSynced: { start: null, end: null },
      durationS: 0,
      activeS: 0,
      energyWh: 0,
      filament: [],
      filamentMm: 0,
      filamentG: 0,
      technicianMin: 0,
      technicians: [],
    };
    return {
      ...usage,
      useType: s.useType,
      endedAt: cp?.at ?? s.startedAt,
      clockSynced: { ...usage.clockSynced, end: null },
      reason: 'interrupted',
      lastCheckpointAt: cp?.at ?? null,
    };
  });
  const newest = open.at(-1);
  const resume: Resume | null = newest ? { fromSessionId: newest.started.sessionId, affiliateId: newest.started.affiliateId, useType: newest.started.useType, meters: newest.checkpoint?.data.meters ?? null } : null;
  return { ended, resume };
}

/**
 * What makes the tool safe: a busy tool with an interrupted session goes on as a new session
 * for the same affiliate; a relay on with nothing running is switched off; a busy tool with no
 * session to resume is left on (switching it off could ruin a print).
 */
export function recoveryAction(canResume: boolean, busy: boolean, relayOn: boolean): 'resume' | 'switch-off' | 'leave-on' | 'none' {
  if (canResume && busy) return 'resume';
  if (relayOn) return busy ? 'leave-on' : 'switch-off';
  return 'none';
}
