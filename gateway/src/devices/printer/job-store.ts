/**
 * Where a printer's jobs are written: the progress of a running job in `printer_job_checkpoints`
 * (updated in place every few seconds, not chained: a crash loses at most one interval), and the
 * end of a job — its `printer.job-ended` event and the removal of its checkpoint — in one
 * fsynced transaction. A job the journal shows started and never ended was cut short by a crash
 * or a power cut; at start it is ended `interrupted` with its last checkpoint.
 */
import type { Journal } from '../../journal/journal.js';
import { interruptedJobs, type JobCheckpoint, type JobEnded, type JobMetered, type JobStarted } from './job.js';

export class JobStore {
  private readonly upsert;
  private readonly select;
  private readonly remove;
  private readonly unended;
  private readonly unmetered;

  constructor(
    private readonly journal: Journal,
    private readonly deviceId: string,
  ) {
    const db = journal.db;
    this.upsert = db.prepare(`INSERT INTO printer_job_checkpoints (job_id, device_id, at, data) VALUES (?, ?, ?, ?)
      ON CONFLICT (job_id) DO UPDATE SET at = excluded.at, data = excluded.data`);
    this.select = db.prepare('SELECT at, data FROM printer_job_checkpoints WHERE job_id = ?');
    this.remove = db.prepare('DELETE FROM printer_job_checkpoints WHERE job_id = ?');
    // by the index of ended jobs: a start does not read every job the journal ever held
    this.unended = db.prepare(`SELECT s.at, s.data FROM events s
      WHERE s.kind = 'printer.job-started' AND s.device_id = ?
        AND NOT EXISTS (SELECT 1 FROM events e WHERE e.kind = 'printer.job-ended' AND json_extract(e.data, '$.jobId') = json_extract(s.data, '$.jobId'))
      ORDER BY s.id`);
    // SD jobs of a file (any case) and size that ended without it and were not metered from it since
    this.unmetered = db.prepare(`SELECT s.at AS startedAt, e.at AS endedAt, e.data FROM events e
      JOIN events s ON s.kind = 'printer.job-started' AND s.device_id = e.device_id AND json_extract(s.data, '$.jobId') = json_extract(e.data, '$.jobId')
      WHERE e.kind = 'printer.job-ended' AND e.device_id = @device AND json_extract(e.data, '$.mode') = 'sd'
        AND lower(json_extract(e.data, '$.file')) = lower(@file) AND json_extract(e.data, '$.sd.total') = @bytes
        AND COALESCE(json_extract(e.data, '$.material.source'), '') <> 'file'
        AND NOT EXISTS (SELECT 1 FROM events m WHERE m.kind = 'printer.job-metered' AND m.device_id = e.device_id AND json_extract(m.data, '$.jobId') = json_extract(e.data, '$.jobId'))
      ORDER BY e.id`);
  }

  /** `extra`: what a driver keeps with the start besides (a print host's own job id). */
  started(job: JobStarted, extra: Record<string, unknown> = {}): void {
    this.journal.record('printer.job-started', this.deviceId, { ...job, ...extra });
  }

  checkpoint(jobId: string, data: JobCheckpoint, at: Date): void {
    this.upsert.run(jobId, this.deviceId, at.toISOString(), JSON.stringify(data));
  }

  /** Journals the end and drops the checkpoint, in one fsynced transaction (held in memory while the storage refuses it). */
  ended(e: JobEnded): void {
    this.journal.durablyOrLater(() => {
      this.journal.record('printer.job-ended', this.deviceId, { ...e });
      this.remove.run(e.jobId);
    });
  }

  /** The ended SD jobs of this file (name in any case, size) that its figure did not come from. */
  endedWithoutFile(file: string, bytes: number): { startedAt: string; endedAt: string; job: JobEnded }[] {
    return (this.unmetered.all({ device: this.deviceId, file, bytes }) as { startedAt: string; endedAt: string; data: string }[]).map((r) => ({ startedAt: r.startedAt, endedAt: r.endedAt, job: JSON.parse(r.data) as JobEnded }));
  }

  /** Journals that an ended job was metered again from its file. */
  metered(m: JobMetered): void {
    this.journal.durably(() => this.journal.record('printer.job-metered', this.deviceId, { ...m }));
  }

  /** Ends the jobs a crash or a power cut cut short, with their last checkpoints; returns them. */
  endInterrupted(): JobEnded[] {
    const ended = interruptedJobs(this.open());
    for (const e of ended) this.ended(e);
    return ended;
  }

  /** The jobs the journal shows started and never ended, oldest first, with their last checkpoints and when they started. */
  open<S extends JobStarted = JobStarted>(): { started: S; startedAt: string; checkpoint: { at: string; data: JobCheckpoint } | null }[] {
    return (this.unended.all(this.deviceId) as { at: string; data: string }[]).map((r) => {
      const started = JSON.parse(r.data) as S;
      const row = this.select.get(started.jobId) as { at: string; data: string } | undefined;
      return { started, startedAt: r.at, checkpoint: row ? { at: row.at, data: JSON.parse(row.data) as JobCheckpoint } : null };
    });
  }
}
