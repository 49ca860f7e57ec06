/**
 * A Prusa printer driven by PrusaLink, on the network: the same printer role as the serial
 * driver, from PrusaLink's HTTP API (its OpenAPI, spec/openapi.yaml of prusa3d/Prusa-Link-Web),
 * polled: `/api/v1/info` once, `/api/v1/status` every `pollIntervalMs`, `/api/v1/job` when a
 * job appears. Digest authentication (or the older X-Api-Key).
 *
 * PrusaLink does not say how much filament a job used. The gateway downloads the job's G-code
 * (`file.refs.download`) when the job appears and runs the filament engine over it: a finished
 * job used the whole file (exact, as for a file the gateway streams), a stopped or failed one the
 * file up to the progress last reported (a percentage: its uncertainty is the filament of the
 * part of the file between that reading and the next percent, or what was printed since).
 * A job whose file cannot be read has no figure and is flagged for a custodian.
 *
 * PrusaLink keeps no job history: after a gateway restart a job still printing (the same id) is
 * followed on; one that ended meanwhile is ended from `/api/v1/job` if the printer still shows
 * it (FINISHED or STOPPED with its id), else with its last checkpoint.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { PrusalinkPrinterConfig } from '../../config/schema.js';
import { storageProblemOf, type Journal } from '../../journal/journal.js';
import type { Logger } from '../../log.js';
import { deviceState, type Device, type DeviceHealth, type DeviceState } from '../device.js';
import { consumedAtByte, profileOf, type FileProfile } from '../printer/file-meter.js';
import { gramsOf, MATERIAL_DENSITY, type FilamentSpec } from '../printer/filament.js';
import { addPerExtruder, combinedMaterial, type JobInfo, type JobOutcome, type Material } from '../printer/job.js';
import { JobStore } from '../printer/job-store.js';
import type { PrinterEvents } from '../printer/driver.js';
import { printerStateOf, type PrinterState } from '../printer/printer-state.js';
import type { Temperatures } from '../printer/responses.js';
import type { ToolPrinter } from '../tool-io.js';
import { digestAuthorization, parseChallenge, type DigestChallenge } from './digest.js';

interface Status {
  printer?: { state?: string; temp_nozzle?: number; target_nozzle?: number; temp_bed?: number; target_bed?: number; status_printer?: { ok?: boolean; message?: string } };
  job?: { id?: number; progress?: number; time_printing?: number };
}

interface JobDetail {
  id: number;
  state: string;
  progress: number;
  file?: { name?: string; display_name?: string; path?: string; size?: number; refs?: { download?: string } };
}

interface HostJob {
  id: string;
  hostJobId: number;
  file: string;
  startedAt: Date;
  startedMono: number;
  paused: boolean;
  /** Percent, 0..100, as last reported. */
  progress: number;
  profile: FileProfile | null;
  /** Why the file is not there to meter the job (null: it is, or is being fetched). */
  noFile: string | null;
  /** What a checkpoint said it used, for a job followed on after a restart before its file is read. */
  checkpointMm: number;
}

class AuthRefused extends Error {}

export class PrusalinkPrinter extends EventEmitter<PrinterEvents> implements Device, ToolPrinter {
  readonly kind = 'prusalink-printer';
  private readonly log: Logger;
  private readonly jobs: JobStore;
  private readonly spec: FilamentSpec;
  private readonly now: () => Date;
  private challenge: DigestChallenge | null = null;
  private nc = 0;
  private timer: NodeJS.Timeout | null = null;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private online = false;
  private everOnline = false;
  private recovered = false;
  private authRefused: string | null = null;
  private fault: { kind: string; text: string; at: string } | null = null;
  private temps: Temperatures | null = null;
  private hostState: string | null = null;
  private info: Record<string, unknown> | null = null;
  private job: HostJob | null = null;
  private lastJob: JobInfo | null = null;
  private endedJobsMm: number[] = [];
  private readonly materials: { jobId: string; material: Material }[] = [];
  private delayMs: number;
  private lastSeen: Date | null = null;
  private since = new Date();
  private healthNow: DeviceState = 'offline';
  private stateNow: PrinterState = 'offline';
  private readonly counters = { polls: 0, failures: 0, authFailures: 0, downloads: 0, disconnects: 0 };

  constructor(
    private readonly cfg: PrusalinkPrinterConfig,
    private readonly journal: Journal,
    log: Logger,
    private readonly opts: { checkpointMs: number; now?: () => Date },
  ) {
    super();
    this.log = log.child({ device: cfg.id });
    this.now = opts.now ?? (() => new Date());
    const density = cfg.filament.densityGPerCm3 ?? MATERIAL_DENSITY[cfg.filament.material.toUpperCase()]!;
    this.spec = { diameterMm: cfg.filament.diameterMm, densityGPerCm3: density };
    this.jobs = new JobStore(journal, cfg.id);
    this.delayMs = cfg.reconnect.initialMs;
  }

  get id(): string {
    return this.cfg.id;
  }

  get state(): PrinterState {
    return this.stateNow;
  }

  get busy(): boolean {
    return this.job !== null || this.stateNow === 'heating';
  }

  get filamentCountersMm(): number[] {
    return addPerExtruder(this.endedJobsMm, this.job ? [this.jobMm(this.job, this.job.progress)] : []);
  }

  get jobMark(): number {
    return this.job ? this.materials.findIndex((m) => m.jobId === this.job!.id) : this.materials.length;
  }

  materialSince(mark: number): Material | null {
    return combinedMaterial(this.materials.slice(Math.max(0, mark)).map((m) => (this.job?.id === m.jobId ? this.material(this.job) : m.material)));
  }

  gramsOf(mm: number): number {
    return gramsOf(mm, this.spec);
  }

  get currentJob(): JobInfo | null {
    return this.job ? this.jobInfo(this.job, this.job.paused ? 'paused' : 'printing') : null;
  }

  start(): void {
    this.checkpointTimer = setInterval(() => this.checkpoint(), this.opts.checkpointMs);
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    // the print goes on without the gateway: its job stays open for the next start
    this.checkpoint();
  }

  health(): DeviceHealth {
    const state = this.healthState();
    return {
      id: this.cfg.id,
      kind: this.kind,
      name: this.cfg.name ?? this.cfg.id,
      state,
      ...((this.authRefused ?? (state === 'fault' ? this.fault?.text : undefined)) && { reason: this.authRefused ?? this.fault!.text }),
      lastSeen: this.lastSeen?.toISOString() ?? null,
      since: this.since.toISOString(),
      detail: {
        target: this.cfg.url,
        printerState: this.stateNow,
        hostState: this.hostState,
        busy: this.busy,
        info: this.info,
        temperatures: this.temps,
        fault: this.fault,
        job: this.currentJob,
        lastJob: this.lastJob,
        filament: { ...this.cfg.filament, densityGPerCm3: this.spec.densityGPerCm3 },
        link: { online: this.online, pollDelayMs: this.online ? this.cfg.pollIntervalMs : this.delayMs, ...this.counters },
      },
    };
  }

  // ---- HTTP ----

  private async request(method: string, path: string, accept = 'application/json'): Promise<Response> {
    const url = new URL(path, this.cfg.url);
    const headers = (): Record<string, string> => {
      const h: Record<string, string> = { accept };
      if (this.cfg.apiKey) h['x-api-key'] = this.cfg.apiKey;
      if (this.cfg.password !== undefined && this.challenge) h.authorization = digestAuthorization(this.challenge, this.cfg.username, this.cfg.password, method, url.pathname + url.search, ++this.nc);
      return h;
    };
    let res = await fetch(url, { method, headers: headers(), signal: AbortSignal.timeout(this.cfg.requestTimeoutMs) });
    if (res.status === 401 && this.cfg.password !== undefined) {
      const c = parseChallenge(res.headers.get('www-authenticate'));
      const fresh = c !== null && (this.challenge === null || c.stale || c.nonce !== this.challenge.nonce);
      if (c && fresh) {
        await res.body?.cancel();
        this.challenge = c;
        this.nc = 0;
        res = await fetch(url, { method, headers: headers(), signal: AbortSignal.timeout(this.cfg.requestTimeoutMs) });
      }
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new AuthRefused(`HTTP ${res.status} on ${url.pathname}`);
    }
    return res;
  }

  private async getJson<T>(path: string): Promise<T | null> {
    const res = await this.request('GET', path);
    if (res.status === 204) return null;
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status} on ${path}`);
    }
    return (await res.json()) as T;
  }

  // ---- polling ----

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.poll(), ms);
  }

  private async poll(): Promise<void> {
    try {
      if (!this.info) this.info = await this.getJson<Record<string, unknown>>('/api/v1/info');
      const status = await this.getJson<Status>('/api/v1/status');
      this.counters.polls++;
      this.lastSeen = this.now();
      if (!this.online) this.onOnline();
      if (!this.recovered) await this.recover(status ?? {});
      await this.onStatus(status ?? {});
      this.delayMs = this.cfg.reconnect.initialMs;
      this.schedule(this.cfg.pollIntervalMs);
    } catch (err) {
      if (this.stopped) return;
      if (err instanceof AuthRefused) return this.onAuthRefused(err.message);
      this.onFailure((err as Error).message);
    }
  }

  private onOnline(): void {
    this.online = true;
    if (this.authRefused) this.journal.record('device.fault-cleared', this.cfg.id, { kind: 'auth-refused', text: this.authRefused, by: 'PrusaLink accepted the gateway' });
    this.authRefused = null;
    this.journal.record(this.everOnline ? 'device.reconnected' : 'device.connected', this.cfg.id, { target: this.cfg.url });
    if (!this.everOnline) this.journal.record('device.hello', this.cfg.id, { firmware: 'PrusaLink', machine: this.info?.hostname ?? null });
    this.everOnline = true;
    this.log.info('PrusaLink printer online');
  }

  private onFailure(reason: string): void {
    this.counters.failures++;
    if (this.online) {
      this.online = false;
      this.counters.disconnects++;
      this.journal.record('device.lost', this.cfg.id, { reason });
      this.log.warn({ reason, job: this.job?.file ?? null }, `PrusaLink printer lost: ${reason}`);
      this.recovered = false; // the job may have ended meanwhile
    }
    this.updateState();
    this.schedule(Math.round(this.delayMs * (0.8 + Math.random() * 0.4)));
    this.delayMs = Math.min(this.cfg.reconnect.maxMs, this.delayMs * 2);
  }

  private onAuthRefused(text: string): void {
    this.counters.authFailures++;
    const reason = `PrusaLink refused the gateway: ${text}. Check ${this.cfg.password !== undefined ? 'username and password' : 'apiKey'}; tried again in ${this.cfg.authRetryS} s`;
    if (this.authRefused === null) {
      this.journal.record('device.fault', this.cfg.id, { kind: 'auth-refused', text: reason });
      this.log.error(reason);
    }
    this.authRefused = reason;
    this.online = false;
    this.recovered = false;
    this.updateState();
    this.schedule(this.cfg.authRetryS * 1000);
  }

  private async onStatus(s: Status): Promise<void> {
    const p = s.printer ?? {};
    this.hostState = p.state ?? null;
    if (typeof p.temp_nozzle === 'number' || typeof p.temp_bed === 'number') {
      const hotend = typeof p.temp_nozzle === 'number' ? { actual: p.temp_nozzle, target: p.target_nozzle ?? 0 } : undefined;
      const bed = typeof p.temp_bed === 'number' ? { actual: p.temp_bed, target: p.target_bed ?? 0 } : undefined;
      this.temps = { ...(hotend && { hotend }), ...(bed && { bed }), tools: hotend ? [hotend] : [] };
    }
    // a fault while the printer says ERROR, in its own words
    if (p.state === 'ERROR' && !this.fault) {
      const text = p.status_printer?.message?.trim() || 'the printer reports an error';
      this.fault = { kind: 'printer-error', text, at: this.now().toISOString() };
      this.journal.record('device.fault', this.cfg.id, { kind: this.fault.kind, text });
      this.log.error(`printer fault: ${text}`);
    } else if (p.state !== 'ERROR' && this.fault) {
      this.journal.record('device.fault-cleared', this.cfg.id, { kind: this.fault.kind, text: this.fault.text, by: `the printer is ${p.state ?? 'back'}` });
      this.fault = null;
    }
    // ATTENTION (a filament runout waiting for the user) and BUSY keep the job they interrupt
    const running = s.job?.id !== undefined && ['PRINTING', 'PAUSED', 'ATTENTION', 'BUSY'].includes(p.state ?? '');
    const job = this.job;
    if (job && (!running || s.job?.id !== job.hostJobId)) {
      const outcome: JobOutcome = p.state === 'FINISHED' ? 'finished' : p.state === 'ERROR' ? 'failed' : 'cancelled';
      // a finished job printed its whole file; otherwise up to the progress last read
      if (outcome === 'finished') job.progress = 100;
      this.endJob(job, outcome, outcome === 'failed' ? (this.fault?.text ?? 'the printer reports an error') : outcome === 'finished' ? 'the printer finished the print' : `the print stopped (PrusaLink: ${p.state ?? 'unknown'})`);
    } else if (job && s.job?.progress !== undefined) {
      job.paused = p.state === 'PAUSED' || p.state === 'ATTENTION';
      if (s.job.progress !== job.progress) {
        job.progress = s.job.progress;
        this.emit('progress', { jobId: job.id, progress: job.progress / 100 });
      }
    }
    if (!this.job && running && s.job?.id !== undefined) await this.openJob(s.job.id, s.job.progress ?? 0, p.state === 'PAUSED');
    this.updateState();
  }

  // ---- jobs ----

  private async openJob(hostJobId: number, progress: number, paused: boolean, resumed?: { jobId: string; startedAt: string; file: string; checkpointMm: number }): Promise<void> {
    const detail = await this.getJson<JobDetail>('/api/v1/job').catch(() => null);
    const file = resumed?.file ?? detail?.file?.display_name ?? detail?.file?.name ?? `job ${hostJobId}`;
    const job: HostJob = {
      id: resumed?.jobId ?? randomUUID(),
      hostJobId,
      file,
      startedAt: resumed ? new Date(resumed.startedAt) : this.now(),
      startedMono: resumed ? performance.now() - (this.now().getTime() - Date.parse(resumed.startedAt)) : performance.now(),
      paused,
      progress,
      profile: null,
      noFile: null,
      checkpointMm: resumed?.checkpointMm ?? 0,
    };
    this.job = job;
    if (!resumed) this.jobs.started({ jobId: job.id, mode: 'sd', file }, { hostJobId, host: 'prusalink' });
    if (!this.materials.some((m) => m.jobId === job.id)) this.materials.push({ jobId: job.id, material: this.material(job) });
    this.log.info({ jobId: job.id, file }, `${resumed ? 'following the print on' : 'job started on the printer'}: ${file}`);
    const download = detail?.id === hostJobId ? detail.file?.refs?.download : undefined;
    if (!download) {
      job.noFile = "PrusaLink did not name the job's file";
      return;
    }
    try {
      const res = await this.request('GET', download, '*/*');
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const text = Buffer.from(await res.arrayBuffer()).toString('latin1');
      this.counters.downloads++;
      job.profile = profileOf(file, text, true);
    } catch (err) {
      job.noFile = `the job's file could not be read from the printer (${(err as Error).message})`;
      this.log.warn({ jobId: job.id }, `${file}: ${job.noFile}`);
    }
  }

  private jobMm(job: HostJob, progress: number): number {
    if (!job.profile) return job.checkpointMm;
    const byte = progress >= 100 ? job.profile.bytes : Math.floor((progress / 100) * job.profile.bytes);
    return consumedAtByte(job.profile, byte).reduce((a, b) => a + b, 0);
  }

  private material(job: HostJob): Material {
    if (!job.profile) return { source: 'position-estimate', uncertaintyMm: null, flagged: job.noFile ? `${job.noFile}: no filament figure` : null };
    if (job.progress >= 100) return { source: 'file', uncertaintyMm: 0, flagged: null };
    // up to one percent of the file may have been printed past the progress read
    const step = this.jobMm(job, Math.min(100, job.progress + 1)) - this.jobMm(job, job.progress);
    return { source: 'file', uncertaintyMm: Math.round(step * 1000) / 1000, flagged: null };
  }

  private jobInfo(job: HostJob, state: JobInfo['state']): JobInfo {
    const mm = this.jobMm(job, job.progress);
    return {
      id: job.id,
      mode: 'sd',
      file: job.file,
      startedAt: job.startedAt.toISOString(),
      state,
      progress: Math.min(1, job.progress / 100),
      filamentMm: round(mm, 3),
      filamentG: round(gramsOf(mm, this.spec), 3),
      material: this.material(job),
    };
  }

  private endJob(job: HostJob, outcome: JobOutcome, reason: string): void {
    if (this.job === job) this.job = null;
    const info = this.jobInfo(job, outcome);
    this.lastJob = info;
    this.endedJobsMm = addPerExtruder(this.endedJobsMm, [info.filamentMm]);
    const entry = this.materials.find((m) => m.jobId === job.id);
    if (entry) entry.material = info.material;
    this.jobs.ended({ jobId: job.id, mode: 'sd', file: job.file, outcome, reason, filamentMm: info.filamentMm, filamentG: info.filamentG, material: info.material, durationS: round((performance.now() - job.startedMono) / 1000, 1) });
    if (info.material.flagged) this.journal.record('printer.material-flagged', this.cfg.id, { jobId: job.id, file: job.file, source: info.material.source, text: info.material.flagged });
    this.log.info({ jobId: job.id, outcome, filamentG: info.filamentG }, `job ${outcome}: ${job.file} (${reason})`);
    this.emit('job', info);
  }

  /** The jobs the journal holds open (a gateway that stopped, a printer that was unreachable): followed on, or ended as the printer still shows them. */
  private async recover(s: Status): Promise<void> {
    this.recovered = true;
    const open = this.jobs.open<{ jobId: string; mode: 'sd'; file: string; hostJobId?: number }>();
    if (open.length === 0) return;
    const detail = await this.getJson<JobDetail>('/api/v1/job').catch(() => null);
    const runningId = ['PRINTING', 'PAUSED', 'ATTENTION', 'BUSY'].includes(s.printer?.state ?? '') ? s.job?.id : undefined;
    for (const o of open) {
      if (o.started.jobId === this.job?.id) {
        if (runningId === this.job.hostJobId) continue; // still printing: followed on
      }
      const job: HostJob =
        o.started.jobId === this.job?.id
          ? this.job
          : { id: o.started.jobId, hostJobId: o.started.hostJobId ?? -1, file: o.started.file, startedAt: new Date(o.startedAt), startedMono: performance.now() - (this.now().getTime() - Date.parse(o.startedAt)), paused: false, progress: o.checkpoint?.data.progress !== undefined ? o.checkpoint.data.progress * 100 : 0, profile: null, noFile: null, checkpointMm: o.checkpoint?.data.filamentMm ?? 0 };
      if (!this.job && runningId !== undefined && runningId === job.hostJobId) {
        await this.openJob(runningId, s.job?.progress ?? job.progress, s.printer?.state === 'PAUSED', { jobId: job.id, startedAt: o.startedAt, file: job.file, checkpointMm: job.checkpointMm });
        continue;
      }
      if (!this.materials.some((m) => m.jobId === job.id)) this.materials.push({ jobId: job.id, material: this.material(job) });
      if (detail?.id === job.hostJobId && (detail.state === 'FINISHED' || detail.state === 'STOPPED')) {
        if (!job.profile) await this.fetchProfile(job, detail);
        job.progress = detail.state === 'FINISHED' ? 100 : detail.progress;
        this.endJob(job, detail.state === 'FINISHED' ? 'finished' : 'cancelled', `ended while the gateway was away (PrusaLink: ${detail.state})`);
      } else {
        this.endJob(job, 'interrupted', 'ended while the gateway was away; the printer no longer shows it: filament as last read');
      }
    }
  }

  private async fetchProfile(job: HostJob, detail: JobDetail): Promise<void> {
    const download = detail.file?.refs?.download;
    if (!download) return;
    try {
      const res = await this.request('GET', download, '*/*');
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      job.profile = profileOf(job.file, Buffer.from(await res.arrayBuffer()).toString('latin1'), true);
      this.counters.downloads++;
    } catch {
      // the checkpoint's figure stands
    }
  }

  private checkpoint(): void {
    const job = this.job;
    if (!job) return;
    const info = this.jobInfo(job, 'printing');
    try {
      this.jobs.checkpoint(job.id, { filamentMm: info.filamentMm, filamentG: info.filamentG, material: info.material, progress: info.progress, durationS: round((performance.now() - job.startedMono) / 1000, 1) }, this.now());
    } catch (err) {
      if (storageProblemOf(err) === null) throw err;
    }
  }

  private healthState(): DeviceState {
    if (this.authRefused) return 'fault';
    return deviceState(this.online, this.fault ? { state: 'fault', reason: this.fault.text } : null);
  }

  private updateState(): void {
    const health = this.healthState();
    if (health !== this.healthNow) {
      this.healthNow = health;
      this.since = this.now();
    }
    const refused = this.authRefused !== null;
    const next = printerStateOf({ connected: this.online || refused, ready: this.online || refused, faulted: this.fault !== null || refused, job: this.job, temps: this.temps });
    if (next === this.stateNow) return;
    this.stateNow = next;
    this.emit('state', next);
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
