/**
 * What the journal says about tools and sessions now, rebuilt from its events: a tool's
 * status as a maintainer set it, and the sessions that were started and never ended (after
 * a crash or a power cut, the ones to recover). Folds are pure; the readers only query.
 */
import type { Journal, JournalEvent } from '../journal/journal.js';

export type ToolSetting = 'available' | 'blocked' | 'maintenance';

export interface ToolStatusRecord {
  status: ToolSetting;
  reason: string | null;
  by: string | null;
  /** When it was set; null: never set, available. */
  since: string | null;
}

export const AVAILABLE: ToolStatusRecord = { status: 'available', reason: null, by: null, since: null };

/** The tool's status from its latest `tool.status` event. */
export function toolStatusOf(journal: Journal, toolId: string): ToolStatusRecord {
  const e = journal.latest('tool.status', toolId);
  if (!e) return AVAILABLE;
  return { status: e.data.status as ToolSetting, reason: (e.data.reason as string | null) ?? null, by: (e.data.by as string | null) ?? null, since: e.at };
}

export function setToolStatus(journal: Journal, toolId: string, status: ToolSetting, reason: string | null, by: string | null): ToolStatusRecord {
  journal.record('tool.status', toolId, { status, reason, by });
  return toolStatusOf(journal, toolId);
}

export interface StartedSession {
  sessionId: string;
  toolId: string;
  affiliateId: string;
  useType: string;
  startedAt: string;
}

/** Sessions started and not ended, in the order they started, with their latest use type. */
export function foldOpenSessions(events: Iterable<Pick<JournalEvent, 'kind' | 'data'>>): StartedSession[] {
  const open = new Map<string, StartedSession>();
  for (const e of events) {
    const id = e.data.sessionId as string;
    if (e.kind === 'session.started') open.set(id, e.data as unknown as StartedSession);
    else if (e.kind === 'session.ended') open.delete(id);
    else if (e.kind === 'session.use-type') {
      const s = open.get(id);
      if (s) open.set(id, { ...s, useType: e.data.useType as string });
    }
  }
  return [...open.values()];
}

/**
 * The same fold over the events of the sessions that have no `session.ended` (looked up by
 * index), so a start does not parse every session the journal ever held.
 */
export function openSessionsOf(journal: Journal, toolId?: string): StartedSession[] {
  const rows = journal.db
    .prepare(
      `SELECT s.kind, s.data FROM events s
       WHERE s.kind IN ('session.started', 'session.use-type') AND (@tool IS NULL OR s.device_id = @tool)
         AND NOT EXISTS (SELECT 1 FROM events e WHERE e.kind = 'session.ended' AND json_extract(e.data, '$.sessionId') = json_extract(s.data, '$.sessionId'))
       ORDER BY s.id`,
    )
    .all({ tool: toolId ?? null }) as { kind: string; data: string }[];
  return foldOpenSessions(rows.map((r) => ({ kind: r.kind, data: JSON.parse(r.data) as Record<string, unknown> })));
}
