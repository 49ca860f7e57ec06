/**
 * Session events on the embedded broker's `<base>/gateway/sessions` topic: every session that
 * starts or ends at any tool, as the journal records it, so that dashboards and instruments
 * in the lab see them. A view only: the journal and the ledger outbox are the record.
 */
import type { Journal, JournalEvent } from '../journal/journal.js';
import type { Logger } from '../log.js';
import type { EmbeddedBroker } from './broker.js';
import { sessionEventSchema, type SessionEvent } from './schemas.js';

const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? Math.max(0, x) : 0);
const text = (x: unknown) => (typeof x === 'string' ? x : undefined);
const isoOr = (x: string | undefined, fallback: string) => {
  const t = x === undefined ? NaN : Date.parse(x);
  return new Date(Number.isNaN(t) ? fallback : t).toISOString();
};

/** The session event of a journal event, or null for other kinds (and for data that does not fit the schema). */
export function sessionEventOf(e: JournalEvent): SessionEvent | null {
  if (e.kind !== 'session.started' && e.kind !== 'session.ended') return null;
  const d = e.data;
  const ended = e.kind === 'session.ended';
  const event = {
    event: ended ? 'ended' : 'started',
    sessionId: text(d.sessionId),
    toolId: text(d.toolId) ?? e.deviceId ?? undefined,
    affiliateId: text(d.affiliateId),
    ...(text(d.useType) !== undefined && { useType: text(d.useType) }),
    at: isoOr(text(ended ? d.endedAt : d.startedAt), e.at),
    ...(ended && text(d.reason) !== undefined && { reason: text(d.reason) }),
    ...(ended && { usage: { durationS: num(d.durationS), activeS: num(d.activeS), energyWh: num(d.energyWh), filamentG: num(d.filamentG) } }),
  };
  const parsed = sessionEventSchema.safeParse(event);
  return parsed.success ? parsed.data : null;
}

/** Publishes every session event the journal records from now on, after its transaction. */
export function publishSessionEvents(journal: Journal, broker: EmbeddedBroker, log: Logger): void {
  journal.afterCommit((e) => {
    // Once the event's transaction has committed: never throw back into the journal, publish a moment later.
    const event = sessionEventOf(e);
    if (!event) return;
    setImmediate(() => broker.publishSessionEvent(event).catch((err: Error) => log.debug({ err, sessionId: event.sessionId }, 'session event not published on the embedded broker')));
  });
}
