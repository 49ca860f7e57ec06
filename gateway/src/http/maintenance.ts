/**
 * Run hours and services per tool, from the journal: a tool's run hours are the active time
 * of its sessions (the busy time its node or printer reported) since the last service that
 * reset the counter, plus the open session's so far. A service is a `maintenance.service`
 * event; nothing else is stored.
 */
import type { Journal } from '../journal/journal.js';
import type { ToolSessions } from '../sessions/tool-sessions.js';

export interface MaintenanceState {
  toolId: string;
  runHours: number;
  serviceEveryH: number | null;
  dueInH: number | null;
  due: boolean;
  lastService: { at: string; by: string; note: string } | null;
}

/** Hours to 4 decimals (about a third of a second): a short session still shows. */
const hours = (s: number) => Math.round((s / 3600) * 10_000) / 10_000;

export class Maintenance {
  private readonly lastReset;
  private readonly activeSince;
  /** Per tool: the active seconds of its ended sessions after `resetId`, summed up to event `upTo` (each query adds only the newer ones). */
  private readonly sums = new Map<string, { resetId: number; upTo: number; activeS: number }>();

  constructor(private readonly journal: Journal) {
    const db = journal.db;
    this.lastReset = db.prepare(`SELECT COALESCE(MAX(id), 0) FROM events WHERE kind = 'maintenance.service' AND device_id = ? AND json_extract(data, '$.resetRunHours') = 1`).pluck();
    // The tool's ended sessions after an event id, by the (device_id, id) index.
    this.activeSince = db.prepare(`SELECT COALESCE(SUM(json_extract(data, '$.activeS')), 0) AS activeS, COALESCE(MAX(id), 0) AS upTo FROM events WHERE device_id = ? AND id > ? AND kind = 'session.ended'`);
  }

  runHours(t: ToolSessions): number {
    const id = t.cfg.id;
    const resetId = this.lastReset.get(id) as number;
    let sum = this.sums.get(id);
    if (!sum || sum.resetId !== resetId) sum = { resetId, upTo: resetId, activeS: 0 };
    const more = this.activeSince.get(id, sum.upTo) as { activeS: number; upTo: number };
    if (more.upTo > 0) sum = { resetId, upTo: more.upTo, activeS: sum.activeS + more.activeS };
    this.sums.set(id, sum);
    return hours(sum.activeS + (t.current()?.activeS ?? 0));
  }

  state(t: ToolSessions): MaintenanceState {
    const runHours = this.runHours(t);
    const every = t.cfg.serviceEveryH ?? null;
    const last = this.journal.latest('maintenance.service', t.cfg.id);
    const dueInH = every === null ? null : Math.round((every - runHours) * 10_000) / 10_000;
    return {
      toolId: t.cfg.id,
      runHours,
      serviceEveryH: every,
      dueInH,
      due: dueInH !== null && dueInH <= 0,
      lastService: last ? { at: last.at, by: last.data.by as string, note: last.data.note as string } : null,
    };
  }

  /** Logs a service; `resetRunHours` starts the tool's run-hour count again from zero. */
  service(t: ToolSessions, note: string, by: string, resetRunHours: boolean): MaintenanceState {
    this.journal.record('maintenance.service', t.cfg.id, { note, by, resetRunHours, runHours: this.runHours(t) });
    return this.state(t);
  }

  /** Services and status changes (block, maintenance, release), newest first. */
  log(toolId: string | undefined, limit: number) {
    const rows = this.journal
      .prepared(`SELECT id, at, kind, device_id AS toolId, data FROM events WHERE kind IN ('maintenance.service', 'tool.status') AND (@tool IS NULL OR device_id = @tool) ORDER BY id DESC LIMIT @limit`)
      .all({ tool: toolId ?? null, limit }) as { id: number; at: string; kind: string; toolId: string; data: string }[];
    return rows.map((r) => {
      const d = JSON.parse(r.data) as Record<string, unknown>;
      return r.kind === 'tool.status'
        ? { id: r.id, at: r.at, toolId: r.toolId, kind: 'status' as const, by: (d.by as string | null) ?? null, note: (d.reason as string | null) ?? null, status: d.status as string }
        : { id: r.id, at: r.at, toolId: r.toolId, kind: 'service' as const, by: d.by as string, note: d.note as string, resetRunHours: d.resetRunHours as boolean, runHours: d.runHours as number };
    });
  }
}
