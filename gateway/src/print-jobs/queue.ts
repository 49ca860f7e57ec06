/**
 * The print queue of the tools with a printer: files sent from a slicer or the API, kept under
 * the data directory, quoted, and printed only under a session, so that every gram has an owner.
 *
 * - An affiliate's job waits (`queued`) until its owner has a session open at the tool: it
 *   starts at once when they already have one, or when they badge in. Someone else's session
 *   does not release it. Queued jobs expire after `queuedExpiryH`.
 * - A maintainer's or admin's job with no session open at the tool opens one attributed to them
 *   (`staffUseType`); with someone else's session open it waits like any other.
 *
 * One check a second, and one after every change (a session started or ended, the printer's
 * state), releases, guards, expires and sweeps; the printer's own `job` event ends a job. Rows in `print_jobs`, changes journaled (`print-job.*`).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync, statfsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { formatMinor } from '../../../ledger-client/src/money.js';
import { toMinor } from '../billing/money.js';
import type { AccessStore } from '../access/store.js';
import type { Billing } from '../billing/billing.js';
import type { Device } from '../devices/device.js';
import { Printer } from '../devices/printer/driver.js';
import type { JobInfo } from '../devices/printer/job.js';
import type { SlicerMetadata } from '../devices/printer/slicer-metadata.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import type { ToolSessions } from '../sessions/tool-sessions.js';
import type { PrintJobsConfig } from './config.js';
import { FileRefusal, safeFileName, saveStream, scanGcode } from './files.js';

export type PrintJobState = 'stored' | 'queued' | 'printing' | 'finished' | 'cancelled' | 'failed' | 'interrupted' | 'expired' | 'removed';

/** Who a job is for: an affiliate, or a maintainer or admin (by their token's name). */
export interface JobOwner {
  id: string;
  staff: boolean;
}

/**
 * A maintainer's or admin's jobs, and the sessions they run under, belong to `<role>:<token
 * name>`: an affiliate id has no colon, so no affiliate is ever charged for a staff print.
 */
export const staffOwner = (t: { id: string; role: string; name: string | null }): JobOwner => ({ id: `${t.role}:${t.name ?? t.id}`, staff: true });

export interface Quote {
  /** The use type the price assumes: the owner's default (an affiliate may change their session's), or staffUseType. */
  useType: string;
  /** The printer's filament, as configured (what is charged). */
  material: string;
  /** Filament the gateway's engine counts over the file, with the printer's filament. */
  filamentMm: number;
  filamentG: number;
  /** What the slicer wrote about the file. */
  slicer: SlicerMetadata;
  /** The slicer's estimate of the print's duration, the time the price assumes; null: none, the usage fee is left out. */
  durationS: number | null;
  /** null: the tool is not billed. Amounts in major units, exact decimal text. */
  price: {
    currency: string;
    cash: boolean;
    billedMin: number;
    usage: string;
    material: string;
    total: string;
    /** Where the money would go: material, maintenance, infrastructure, co-owners. */
    split: { account: string; affiliateId?: string; amount: string }[];
  } | null;
  /** The tariff's confirmAbove, and whether this quote is above it: its owner must confirm it before their badge releases the job. null: the tariff asks no confirmation. */
  confirm: { above: string; needed: boolean } | null;
  /** What a person should know about the figures (a file sliced for another material…). */
  notes: string[];
}

export interface PrintJob {
  id: string;
  toolId: string;
  owner: string;
  staff: boolean;
  file: string;
  bytes: number;
  state: PrintJobState;
  quote: Quote;
  createdAt: string;
  expiresAt: string | null;
  startedAt: string | null;
  endedAt: string | null;
  printerJobId: string | null;
  sessionId: string | null;
  /** Filament metered by the printer driver once it ran, grams: the estimate vs the actual. */
  meteredG: number | null;
  /** When its owner confirmed a quote above the tariff's confirmAbove; null: not (yet). */
  confirmedAt: string | null;
  fileKept: boolean;
}

interface Row {
  id: string;
  tool_id: string;
  owner: string;
  staff: number;
  file: string;
  stored: string;
  bytes: number;
  quote: string;
  state: PrintJobState;
  created_at: string;
  expires_at: string | null;
  started_at: string | null;
  ended_at: string | null;
  printer_job_id: string | null;
  session_id: string | null;
  metered_g: number | null;
  confirmed_at: string | null;
  file_deleted: number;
}

const LIVE: readonly PrintJobState[] = ['stored', 'queued', 'printing'];
const MB = 1_000_000;

export interface PrintQueueParts {
  journal: Journal;
  dataDir: string;
  cfg: PrintJobsConfig;
  tools: ReadonlyMap<string, ToolSessions>;
  devices: ReadonlyMap<string, Device>;
  billing: Billing | null;
  access: AccessStore;
  useTypes: readonly string[];
  /** Why the data directory cannot take more now (below its floor, read-only), or null. */
  storageRefusal: () => string | null;
  /** Free space the data directory must keep, bytes. */
  floorBytes: number;
  log: Logger;
  now?: () => Date;
}

export class PrintQueue {
  private timer: NodeJS.Timeout | null = null;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly now: () => Date;
  /** A staff session asked for at a tool, so that the next check does not ask again while it starts. */
  private readonly opening = new Map<string, number>();

  constructor(private readonly p: PrintQueueParts) {
    this.now = p.now ?? (() => new Date());
  }

  start(): void {
    this.recover();
    for (const t of this.p.tools.values()) {
      const printer = this.printerOf(t);
      if (!printer) continue;
      const onJob = (info: JobInfo) => this.ended(info);
      const onState = () => this.check();
      printer.on('job', onJob);
      printer.on('state', onState);
      this.unsubscribe.push(() => printer.off('job', onJob), () => printer.off('state', onState));
    }
    // a session that starts releases its owner's job at once; one that ends stops its job at once
    this.unsubscribe.push(this.p.journal.afterCommit((e) => (e.kind === 'session.started' || e.kind === 'session.ended') && setImmediate(() => this.check())));
    this.timer = setInterval(() => this.check(), 1000);
    this.check();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /** The tool and its printer, or a refusal naming what is wrong. */
  toolWithPrinter(toolId: string): { tool: ToolSessions; printer: Printer } {
    const tool = this.p.tools.get(toolId);
    if (!tool) throw new FileRefusal(400, `no tool "${toolId}" (known: ${[...this.p.tools.keys()].join(', ') || 'none'})`);
    const printer = this.printerOf(tool);
    if (!printer) throw new FileRefusal(400, `tool "${toolId}" has no printer to send G-code to`);
    return { tool, printer };
  }

  /** Why this owner may not send jobs to this tool, or null. */
  refusalFor(toolId: string, owner: JobOwner): string | null {
    if (owner.staff) return null;
    const a = this.p.access.get(owner.id);
    if (!a) return `affiliate "${owner.id}" is not on the allow-list`;
    if (a.status === 'suspended') return `${a.name} is suspended: no job can be sent`;
    const quals = this.p.access.qualifications().filter((q) => q.affiliateId === owner.id && q.toolId === toolId);
    if (quals.length === 0) return `${a.name} is not qualified on tool "${toolId}": a custodian can add the qualification once the training is done`;
    if (!quals.some((q) => q.expiresAt === null || Date.parse(q.expiresAt) > this.now().getTime())) return `${a.name}'s qualification on tool "${toolId}" has expired: renew it with a custodian`;
    return null;
  }

  /**
   * Streams an upload to disk, quotes it and keeps it (`stored`). A file of the same name the
   * same owner still holds there is replaced, unless it is printing; someone else's is not.
   * `cutOff`: the multipart parser truncated the file at its own limit. `declaredBytes`: the
   * request's length, when known, checked against the disk's floor before anything is read.
   */
  async upload(toolId: string, owner: JobOwner, sentName: string, source: Readable, opts: { declaredBytes: number | null; cutOff?: () => boolean }): Promise<PrintJob> {
    const { printer } = this.toolWithPrinter(toolId);
    const refusal = this.refusalFor(toolId, owner);
    if (refusal) throw new FileRefusal(409, refusal);
    const file = safeFileName(sentName);
    const same = this.liveByName(toolId, file);
    if (same && (same.owner !== owner.id || same.staff !== (owner.staff ? 1 : 0))) throw new FileRefusal(409, `${file} at tool "${toolId}" is someone else's job: give yours another name`);
    if (same?.state === 'printing') throw new FileRefusal(409, `${file} is printing now: give the new one another name`);
    const why = this.p.storageRefusal();
    if (why) throw new FileRefusal(507, `the gateway's storage cannot take the file: ${why}`);
    const dir = join(this.p.dataDir, 'uploads', toolId);
    mkdirSync(dir, { recursive: true });
    if (opts.declaredBytes !== null) {
      const s = statfsSync(dir);
      const free = s.bavail * s.bsize;
      if (free - opts.declaredBytes < this.p.floorBytes) {
        throw new FileRefusal(507, `a file of ${(opts.declaredBytes / MB).toFixed(1)} MB would take the data directory below its floor of ${(this.p.floorBytes / MB).toFixed(0)} MB free (gateway.minFreeMb): delete kept files or free space`);
      }
    }
    const maxFile = this.p.cfg.maxFileMb * MB;
    const used = this.bytesHeld(toolId, owner.id) - (same ? same.bytes : 0);
    const room = this.p.cfg.quotaMb * MB - used;
    const limit =
      room < maxFile
        ? { bytes: Math.max(0, room), message: `this file would take ${owner.id}'s files at tool "${toolId}" past the quota of ${this.p.cfg.quotaMb} MB (printJobs.quotaMb; ${(used / MB).toFixed(1)} MB held): delete some first` }
        : { bytes: maxFile, message: `this file is larger than the ${this.p.cfg.maxFileMb} MB the gateway takes (printJobs.maxFileMb)` };
    const id = randomUUID();
    const stored = join('uploads', toolId, `${id}.gcode`);
    const bytes = await saveStream(source, join(this.p.dataDir, stored), limit, opts.cutOff);
    if (bytes === 0) {
      rmSync(join(this.p.dataDir, stored), { force: true });
      throw new FileRefusal(400, `${file} is empty`);
    }
    let quote: Quote;
    try {
      quote = await this.quote(toolId, owner, printer, join(this.p.dataDir, stored));
    } catch (err) {
      rmSync(join(this.p.dataDir, stored), { force: true });
      throw err;
    }
    const at = this.now().toISOString();
    this.p.journal.db.transaction(() => {
      if (same) this.removeRow(same, owner.id, 'replaced by a new upload of the same name');
      this.p.journal
        .prepared('INSERT INTO print_jobs (id, tool_id, owner, staff, file, stored, bytes, quote, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(id, toolId, owner.id, owner.staff ? 1 : 0, file, stored, bytes, JSON.stringify(quote), 'stored', at);
      this.p.journal.record('print-job.uploaded', toolId, { jobId: id, owner: owner.id, staff: owner.staff, file, bytes, quote: { filamentG: quote.filamentG, durationS: quote.durationS, total: quote.price?.total ?? null, useType: quote.useType } });
    })();
    return this.get(id)!;
  }

  /** Puts a kept file in the queue: it prints once its owner has a session at the tool. */
  enqueue(id: string, by: string): PrintJob {
    const row = this.row(id);
    if (!row) throw new FileRefusal(400, `no print job ${id}`);
    if (row.state === 'queued' || row.state === 'printing') return this.view(row);
    if (row.state !== 'stored' || row.file_deleted) throw new FileRefusal(409, `${row.file} is ${row.state}${row.file_deleted ? ' and its file is gone' : ''}: send it again`);
    const expires = new Date(this.now().getTime() + this.p.cfg.queuedExpiryH * 3_600_000).toISOString();
    this.p.journal.db.transaction(() => {
      this.p.journal.prepared("UPDATE print_jobs SET state = 'queued', expires_at = ? WHERE id = ?").run(expires, id);
      const q = this.quoteOf(row);
      const quote = { filamentG: q.filamentG, durationS: q.durationS, total: q.price ? `${q.price.total} ${q.price.currency}` : null, confirmNeeded: Boolean(q.confirm?.needed && !row.confirmed_at) };
      this.p.journal.record('print-job.queued', row.tool_id, { jobId: id, owner: row.owner, staff: row.staff === 1, file: row.file, expiresAt: expires, quote, by });
    })();
    setImmediate(() => this.check());
    return this.get(id)!;
  }

  /** Its owner confirms a quote above the tariff's confirmAbove: their badge may then release it. */
  confirm(id: string, by: string): PrintJob {
    const row = this.row(id);
    if (!row) throw new FileRefusal(400, `no print job ${id}`);
    if (!this.quoteOf(row).confirm?.needed) throw new FileRefusal(409, `${row.file} needs no confirmation: its quote is not above the tariff's confirmAbove`);
    if (row.confirmed_at) return this.view(row);
    const at = this.now().toISOString();
    this.p.journal.db.transaction(() => {
      this.p.journal.prepared('UPDATE print_jobs SET confirmed_at = ? WHERE id = ?').run(at, id);
      this.p.journal.record('print-job.confirmed', row.tool_id, { jobId: id, owner: row.owner, file: row.file, total: this.quoteOf(row).price?.total ?? null, by });
    })();
    setImmediate(() => this.check());
    return this.get(id)!;
  }

  /** Takes a job out of the queue (or a kept file away): its owner, a maintainer or an admin. A printing job is cancelled at the printer instead. */
  remove(id: string, by: string): PrintJob {
    const row = this.row(id);
    if (!row) throw new FileRefusal(400, `no print job ${id}`);
    if (row.state === 'printing') throw new FileRefusal(409, `${row.file} is printing: cancel the job first`);
    this.p.journal.db.transaction(() => this.removeRow(row, by, 'removed'))();
    return this.get(id)!;
  }

  get(id: string): PrintJob | null {
    const r = this.row(id);
    return r ? this.view(r) : null;
  }

  /** A tool's jobs whose file is still kept, or that are waiting or printing, oldest first; an owner's only when given. */
  list(toolId: string, owner: string | null): PrintJob[] {
    const rows = this.p.journal
      .prepared(`SELECT * FROM print_jobs WHERE tool_id = ? AND (file_deleted = 0 OR state IN ('queued', 'printing')) AND state != 'removed' ${owner === null ? '' : 'AND owner = ? AND staff = 0'} ORDER BY created_at, id`)
      .all(...(owner === null ? [toolId] : [toolId, owner])) as Row[];
    return rows.map((r) => this.view(r));
  }

  /** The kept file of this name at a tool, or null. */
  byName(toolId: string, file: string): PrintJob | null {
    const r = this.liveByName(toolId, file) ?? (this.p.journal.prepared('SELECT * FROM print_jobs WHERE tool_id = ? AND file = ? AND file_deleted = 0 ORDER BY created_at DESC LIMIT 1').get(toolId, file) as Row | undefined) ?? null;
    return r ? this.view(r) : null;
  }

  /** The job printing at a tool now, or the last one that did. */
  latest(toolId: string, owner: string | null): PrintJob | null {
    const r = this.p.journal
      .prepared(`SELECT * FROM print_jobs WHERE tool_id = ? AND state != 'stored' AND state != 'removed' ${owner === null ? '' : 'AND owner = ?'} ORDER BY (state = 'printing') DESC, (state = 'queued') DESC, COALESCE(started_at, created_at) DESC LIMIT 1`)
      .get(...(owner === null ? [toolId] : [toolId, owner])) as Row | undefined;
    return r ? this.view(r) : null;
  }

  /** Releases, expires and sweeps; safe to call at any time. */
  check(): void {
    try {
      this.expire();
      this.sweep();
      for (const tool of this.p.tools.values()) {
        this.guard(tool);
        this.release(tool);
      }
    } catch (err) {
      this.p.log.error({ err }, 'the print queue check failed');
    }
  }

  // ---- inside ----

  private printerOf(tool: ToolSessions): Printer | null {
    const id = tool.cfg.printer;
    const d = id ? this.p.devices.get(id) : undefined;
    return d instanceof Printer ? d : null;
  }

  /**
   * No job prints without a session: when the session it ran in ends while it prints (a forced
   * stop), the job is cancelled at the printer, its cancel script metered with it. A handover
   * is not an end: the print goes on in the next session, which is billed from that moment, as
   * for any print (access-and-sessions.md).
   */
  private guard(tool: ToolSessions): void {
    const printer = this.printerOf(tool);
    const current = printer?.currentJob;
    if (!printer || !current) return;
    const row = this.p.journal.prepared("SELECT * FROM print_jobs WHERE printer_job_id = ? AND state = 'printing'").get(current.id) as Row | undefined;
    if (!row || tool.current() !== null) return;
    try {
      printer.cancel();
    } catch {
      return; // already cancelling
    }
    this.p.journal.record('print-job.cancelled', row.tool_id, { jobId: row.id, owner: row.owner, file: row.file, sessionId: row.session_id, reason: 'its session ended' });
    this.p.log.warn({ jobId: row.id, sessionId: row.session_id }, `print job ${row.file} cancelled: the session it ran in ended`);
  }

  private release(tool: ToolSessions): void {
    const printer = this.printerOf(tool);
    if (!printer || printer.currentJob || !(printer.state === 'idle' || printer.state === 'heating')) return;
    const toolId = tool.cfg.id;
    const session = tool.current();
    if (session) {
      this.opening.delete(toolId);
      const next = this.p.journal
        .prepared("SELECT * FROM print_jobs WHERE tool_id = ? AND state = 'queued' AND owner = ? AND staff = 0 AND (json_extract(quote, '$.confirm.needed') IS NOT 1 OR confirmed_at IS NOT NULL) ORDER BY created_at, id LIMIT 1")
        .get(toolId, session.affiliateId) as Row | undefined;
      const staffNext = next ? undefined : (this.p.journal.prepared("SELECT * FROM print_jobs WHERE tool_id = ? AND state = 'queued' AND owner = ? AND staff = 1 ORDER BY created_at, id LIMIT 1").get(toolId, session.affiliateId) as Row | undefined);
      const job = next ?? staffNext;
      if (job) this.begin(job, printer, session.sessionId);
      return;
    }
    const staff = this.p.journal.prepared("SELECT * FROM print_jobs WHERE tool_id = ? AND state = 'queued' AND staff = 1 ORDER BY created_at, id LIMIT 1").get(toolId) as Row | undefined;
    if (!staff) return;
    const asked = this.opening.get(toolId);
    if (asked !== undefined && performance.now() - asked < 10_000) return;
    try {
      tool.openFor(staff.owner, this.p.cfg.staffUseType, staff.owner);
      this.opening.set(toolId, performance.now());
    } catch (err) {
      this.p.log.warn({ jobId: staff.id, err: (err as Error).message }, `cannot open a session for ${staff.owner}'s job yet`);
      this.opening.set(toolId, performance.now());
    }
  }

  private begin(row: Row, printer: Printer, sessionId: string): void {
    let info: JobInfo;
    try {
      info = printer.startJob(row.file, readFileSync(join(this.p.dataDir, row.stored), 'latin1'));
    } catch (err) {
      const reason = (err as Error).message;
      this.p.journal.db.transaction(() => {
        this.p.journal.prepared("UPDATE print_jobs SET state = 'failed', ended_at = ? WHERE id = ?").run(this.now().toISOString(), row.id);
        this.p.journal.record('print-job.ended', row.tool_id, { jobId: row.id, owner: row.owner, file: row.file, outcome: 'failed', reason, estimateG: this.quoteOf(row).filamentG, meteredG: null });
      })();
      this.p.log.warn({ jobId: row.id, reason }, `print job ${row.file} could not start: ${reason}`);
      return;
    }
    this.p.journal.db.transaction(() => {
      this.p.journal.prepared("UPDATE print_jobs SET state = 'printing', started_at = ?, printer_job_id = ?, session_id = ? WHERE id = ?").run(this.now().toISOString(), info.id, sessionId, row.id);
      this.p.journal.record('print-job.started', row.tool_id, { jobId: row.id, owner: row.owner, file: row.file, printerJobId: info.id, sessionId });
    })();
    this.p.log.info({ jobId: row.id, owner: row.owner, sessionId }, `print job ${row.file} started for ${row.owner}`);
  }

  private ended(info: JobInfo): void {
    const row = this.p.journal.prepared('SELECT * FROM print_jobs WHERE printer_job_id = ?').get(info.id) as Row | undefined;
    if (!row || row.state !== 'printing') return;
    const outcome = info.state === 'printing' || info.state === 'paused' ? 'interrupted' : info.state;
    const estimateG = this.quoteOf(row).filamentG;
    this.p.journal.db.transaction(() => {
      this.p.journal.prepared('UPDATE print_jobs SET state = ?, ended_at = ?, metered_g = ? WHERE id = ?').run(outcome, this.now().toISOString(), info.filamentG, row.id);
      this.p.journal.record('print-job.ended', row.tool_id, { jobId: row.id, owner: row.owner, file: row.file, outcome, sessionId: row.session_id, estimateG, meteredG: info.filamentG });
    })();
    if (this.p.cfg.keepFilesDays === 0) this.deleteFile(row);
    setImmediate(() => this.check());
  }

  /**
   * Jobs the journal shows printing when the gateway starts were cut short by a crash or a power
   * cut: each ends as its printer's job ended (the driver closed it at its start, with its last
   * checkpoint), or as interrupted when the printer's job was never journaled as started.
   */
  private recover(): void {
    const cut = this.p.journal.prepared("SELECT * FROM print_jobs WHERE state = 'printing'").all() as Row[];
    for (const r of cut) {
      const end = this.p.journal
        .prepared("SELECT data FROM events WHERE kind = 'printer.job-ended' AND json_extract(data, '$.jobId') = ? ORDER BY id DESC LIMIT 1")
        .pluck()
        .get(r.printer_job_id) as string | undefined;
      const ended = end ? (JSON.parse(end) as { outcome: PrintJobState; filamentG: number; reason?: string }) : null;
      const outcome = ended?.outcome ?? 'interrupted';
      this.p.journal.db.transaction(() => {
        this.p.journal.prepared('UPDATE print_jobs SET state = ?, ended_at = ?, metered_g = ? WHERE id = ?').run(outcome, this.now().toISOString(), ended?.filamentG ?? null, r.id);
        this.p.journal.record('print-job.ended', r.tool_id, { jobId: r.id, owner: r.owner, file: r.file, outcome, reason: ended?.reason ?? 'the gateway stopped while it printed', sessionId: r.session_id, estimateG: this.quoteOf(r).filamentG, meteredG: ended?.filamentG ?? null });
      })();
      this.p.log.warn({ jobId: r.id, outcome }, `print job ${r.file} was printing when the gateway stopped: ${outcome}`);
    }
  }

  private expire(): void {
    const now = this.now().toISOString();
    const due = this.p.journal.prepared("SELECT * FROM print_jobs WHERE state = 'queued' AND expires_at <= ?").all(now) as Row[];
    for (const r of due) {
      this.p.journal.db.transaction(() => {
        this.p.journal.prepared("UPDATE print_jobs SET state = 'expired', ended_at = ? WHERE id = ?").run(now, r.id);
        this.p.journal.record('print-job.expired', r.tool_id, { jobId: r.id, owner: r.owner, file: r.file, queuedUntil: r.expires_at });
      })();
      this.p.log.info({ jobId: r.id, owner: r.owner }, `print job ${r.file} expired: ${r.owner} did not badge in within ${this.p.cfg.queuedExpiryH} h`);
    }
  }

  /** Files kept their days after their job ended. */
  private sweep(): void {
    const before = new Date(this.now().getTime() - this.p.cfg.keepFilesDays * 86_400_000).toISOString();
    const old = this.p.journal.prepared("SELECT * FROM print_jobs WHERE file_deleted = 0 AND state NOT IN ('stored', 'queued', 'printing') AND ended_at <= ?").all(before) as Row[];
    for (const r of old) this.deleteFile(r);
  }

  private deleteFile(r: Row): void {
    rmSync(join(this.p.dataDir, r.stored), { force: true });
    this.p.journal.prepared('UPDATE print_jobs SET file_deleted = 1 WHERE id = ?').run(r.id);
  }

  /** In the caller's transaction. */
  private removeRow(r: Row, by: string, reason: string): void {
    if (r.state === 'stored' || r.state === 'queued') this.p.journal.prepared("UPDATE print_jobs SET state = 'removed', ended_at = ? WHERE id = ?").run(this.now().toISOString(), r.id);
    this.p.journal.record('print-job.removed', r.tool_id, { jobId: r.id, owner: r.owner, file: r.file, was: r.state, by, reason });
    this.deleteFile(r);
  }

  private liveByName(toolId: string, file: string): Row | null {
    const live = LIVE.map((s) => `'${s}'`).join(', ');
    return (this.p.journal.prepared(`SELECT * FROM print_jobs WHERE tool_id = ? AND file = ? AND state IN (${live}) ORDER BY created_at DESC LIMIT 1`).get(toolId, file) as Row | undefined) ?? null;
  }

  private bytesHeld(toolId: string, owner: string): number {
    return this.p.journal.prepared('SELECT COALESCE(SUM(bytes), 0) FROM print_jobs WHERE tool_id = ? AND owner = ? AND file_deleted = 0').pluck().get(toolId, owner) as number;
  }

  private row(id: string): Row | null {
    return (this.p.journal.prepared('SELECT * FROM print_jobs WHERE id = ?').get(id) as Row | undefined) ?? null;
  }

  private quoteOf(r: Row): Quote {
    return JSON.parse(r.quote) as Quote;
  }

  private view(r: Row): PrintJob {
    return {
      id: r.id,
      toolId: r.tool_id,
      owner: r.owner,
      staff: r.staff === 1,
      file: r.file,
      bytes: r.bytes,
      state: r.state,
      quote: this.quoteOf(r),
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      startedAt: r.started_at,
      endedAt: r.ended_at,
      printerJobId: r.printer_job_id,
      sessionId: r.session_id,
      meteredG: r.metered_g,
      confirmedAt: r.confirmed_at,
      fileKept: r.file_deleted === 0,
    };
  }

  /** The filament engine and the slicer's comments over the file, priced with the tool's tariff for the owner's use type. */
  private async quote(toolId: string, owner: JobOwner, printer: Printer, path: string): Promise<Quote> {
    const scan = await scanGcode(path, printer.positioningSetsE);
    if (scan.commands === 0) throw new FileRefusal(400, 'the file has no G-code command, only comments or blank lines');
    const filament = printer.filament;
    const filamentG = Math.round(printer.gramsOf(scan.filamentMm) * 1000) / 1000;
    const useType = owner.staff ? this.p.cfg.staffUseType : this.defaultUseType(owner.id);
    const durationS = scan.slicer.estimatedS;
    const notes: string[] = [];
    const sliced = scan.slicer.filamentType;
    if (sliced && sliced.toUpperCase() !== filament.material.toUpperCase()) notes.push(`sliced for ${sliced}; the printer holds ${filament.material}, which is what is charged`);
    if (scan.slicer.diameterMm !== null && Math.abs(scan.slicer.diameterMm - filament.diameterMm) > 0.05) notes.push(`sliced for ${scan.slicer.diameterMm} mm filament; the printer takes ${filament.diameterMm} mm`);
    if (durationS === null) notes.push('the slicer gave no time estimate: the price leaves out the time of use');
    if (scan.slicer.filamentG !== null && filamentG > 0 && Math.abs(scan.slicer.filamentG - filamentG) / filamentG > 0.05) {
      notes.push(`the slicer says ${scan.slicer.filamentG} g (its own density); the gateway counts ${filamentG} g with the printer's`);
    }
    let price: Quote['price'] = null;
    let confirm: Quote['confirm'] = null;
    const billing = this.p.billing;
    if (billing) {
      const at = this.now().toISOString();
      const c = billing.quote({ sessionId: 'quote', toolId, affiliateId: owner.id, useType, startedAt: at, endedAt: null, durationS: durationS ?? 0, activeS: durationS ?? 0, filamentG });
      if (c) {
        const mu = billing.cfg.minorUnit;
        const m = (x: number) => formatMinor(x, mu);
        price = {
          currency: billing.cfg.currency,
          cash: c.price.cash,
          billedMin: c.price.billedMin,
          usage: m(c.price.usage),
          material: m(c.price.material),
          total: m(c.price.total),
          split: c.parts.filter((x) => x.amount !== 0).map((x) => ({ account: x.account, ...(x.affiliateId !== undefined && { affiliateId: x.affiliateId }), amount: m(x.amount) })),
        };
        const tariff = billing.cfg.tools[toolId]?.tariffs[useType];
        if (!tariff) notes.push(`tool "${toolId}" has no tariff for ${useType} use: nothing is charged`);
        if (tariff?.confirmAbove !== undefined && !owner.staff) {
          const needed = c.price.total > toMinor(tariff.confirmAbove, mu, 'confirmAbove');
          confirm = { above: tariff.confirmAbove, needed };
          if (needed) notes.push(`the quote is above ${tariff.confirmAbove} ${billing.cfg.currency}: confirm it before badging in, or the job waits`);
        }
      }
    }
    return { useType, material: filament.material, filamentMm: Math.round(scan.filamentMm * 1000) / 1000, filamentG, slicer: scan.slicer, durationS, price, confirm, notes };
  }

  private defaultUseType(affiliateId: string): string {
    const u = this.p.access.get(affiliateId)?.useType;
    return u && this.p.useTypes.includes(u) ? u : this.p.useTypes[0]!;
  }
}
