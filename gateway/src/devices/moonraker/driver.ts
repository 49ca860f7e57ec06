/**
 * A Klipper printer driven by Moonraker, on the network: the same printer role as the serial
 * driver (state, busy, temperatures, jobs with their file and progress, filament per job, faults
 * in Klipper's words), from Moonraker's websocket (JSON-RPC 2.0).
 *
 * At each connection: `server.connection.identify` (with the API key, also sent as X-Api-Key on
 * the upgrade), `server.info`, then `printer.objects.subscribe` to print_stats, extruder,
 * heater_bed, webhooks, display_status and virtual_sdcard; `notify_status_update` keeps them
 * current. A job is the host's print from `printing` to `complete`/`cancelled`/`error`; its
 * filament is Klipper's `print_stats.filament_used` (the G-code's E, net of retractions, for the
 * whole job whenever the gateway joined it), kept at its highest reading.
 *
 * The print goes on while the gateway is away (a lost connection, a gateway restart): the job
 * stays open in the journal with its Moonraker history id, and at the next connection
 * `server.history.list` says how it ended and with how much filament, or that it still runs, and
 * the gateway follows it on. A refused API key is a fault, retried after `authRetryS`, not in a
 * storm; Klipper's shutdown or error is a fault until Klipper is ready again.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import type { MoonrakerPrinterConfig } from '../../config/schema.js';
import { storageProblemOf, type Journal } from '../../journal/journal.js';
import { WarnFlood } from '../../log-limit.js';
import type { Logger } from '../../log.js';
import { VERSION } from '../../version.js';
import { deviceState, type Device, type DeviceHealth, type DeviceProblem, type DeviceState } from '../device.js';
import { gramsOf, MATERIAL_DENSITY, type FilamentSpec } from '../printer/filament.js';
import { addPerExtruder, combinedMaterial, type JobCheckpoint, type JobInfo, type JobOutcome, type Material } from '../printer/job.js';
import { JobStore } from '../printer/job-store.js';
import type { PrinterEvents } from '../printer/driver.js';
import { printerStateOf, type PrinterState } from '../printer/printer-state.js';
import type { Temperatures } from '../printer/responses.js';
import type { ToolPrinter } from '../tool-io.js';
import {
  fileName,
  filamentUsedMm,
  historyJobs,
  isPrinting,
  klippyOf,
  mergeStatus,
  outcomeOfHistory,
  outcomeOfPrintState,
  printState,
  progressOf,
  SUBSCRIPTION,
  temperaturesOf,
  type HistoryJob,
  type HostObjects,
} from './host-status.js';
import { RpcClient, RpcError } from './rpc.js';

/** A job as the journal's `printer.job-started` holds it for a print host. */
interface HostJobStarted {
  jobId: string;
  mode: 'host' | 'sd';
  file: string;
  /** Moonraker's history id of the print; null: the host did not say. */
  hostJobId?: string | null;
}

interface HostJob {
  id: string;
  hostJobId: string | null;
  file: string;
  startedAt: Date;
  startedMono: number;
  paused: boolean;
  /** The highest filament_used read, mm: a retraction outstanding lowers Klipper's figure for a while. */
  mm: number;
  progress: number;
  /** Its start is in the journal (it waits for the history id, briefly, when it opens). */
  journaled: boolean;
  /** The connection was lost while it ran: the next connection says how it went on. */
  away: boolean;
  /** Journals its start, once (when the host's history id is known, or cannot be). */
  journalStart: () => void;
}

/** Klippy states in which the printer objects can be read (ready, or stopped by a fault). */
const OBJECTS_READABLE = new Set(['ready', 'shutdown', 'error']);
const PING_MS = 10_000;

export class MoonrakerPrinter extends EventEmitter<PrinterEvents> implements Device, ToolPrinter {
  readonly kind = 'moonraker-printer';
  private readonly log: Logger;
  private readonly jobs: JobStore;
  private readonly spec: FilamentSpec;
  private readonly now: () => Date;
  private readonly warnings: WarnFlood;
  private ws: WebSocket | null = null;
  private rpc: RpcClient | null = null;
  private stopped = false;
  private connected = false;
  /** server.info answered: Moonraker is there and accepts the gateway. */
  private identified = false;
  /** Subscribed to the printer objects (Klipper connected). */
  private subscribed = false;
  private status: HostObjects = {};
  /** print_stats.state at the last update (undefined: nothing read since subscribing). */
  private printStateBefore: string | undefined;
  /** The host's history ids of the jobs ended since the gateway started. */
  private readonly endedHostJobs = new Set<string>();
  private klippyState: string | null = null;
  private klippyMessage = '';
  private authRefused: string | null = null;
  private fault: { kind: string; text: string; at: string } | null = null;
  private temps: Temperatures | null = null;
  private job: HostJob | null = null;
  private lastJob: JobInfo | null = null;
  private endedJobsMm: number[] = [];
  private readonly materials: { jobId: string; material: Material }[] = [];
  private moonraker: { version: string; apiVersion: string } | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private pongDue = false;
  private delayMs: number;
  private everConnected = false;
  private lastSeen: Date | null = null;
  private since = new Date();
  private healthNow: DeviceState = 'offline';
  private stateNow: PrinterState = 'offline';
  private readonly counters = { connects: 0, disconnects: 0, authFailures: 0, statusUpdates: 0, klippyShutdowns: 0, historyRecoveries: 0 };
  private rpcTotals = { requests: 0, errors: 0, timeouts: 0, notifications: 0, malformed: 0 };

  constructor(
    private readonly cfg: MoonrakerPrinterConfig,
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
    this.warnings = new WarnFlood(this.log, (n, kinds) => `${n} more connection problems with Moonraker at ${cfg.url} (${kinds})`, { perWindow: 3, windowMs: 60_000 });
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
    return addPerExtruder(this.endedJobsMm, this.job ? [this.job.mm] : []);
  }

  get jobMark(): number {
    return this.job ? this.materials.findIndex((m) => m.jobId === this.job!.id) : this.materials.length;
  }

  materialSince(mark: number): Material | null {
    return combinedMaterial(this.materials.slice(Math.max(0, mark)).map((m) => m.material));
  }

  gramsOf(mm: number): number {
    return gramsOf(mm, this.spec);
  }

  get currentJob(): JobInfo | null {
    return this.job ? this.info(this.job, this.job.paused ? 'paused' : 'printing') : null;
  }

  get finishedJob(): JobInfo | null {
    return this.lastJob;
  }

  start(): void {
    this.checkpointTimer = setInterval(() => this.checkpoint(), this.opts.checkpointMs);
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    // The print goes on without the gateway: its job stays open, and the next start follows it from the host's history.
    this.checkpoint();
    this.warnings.flush();
    const ws = this.ws;
    this.dropSocket();
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        ws.once('close', () => {
          clearTimeout(t);
          resolve();
        });
        ws.close(1001, 'gateway stopping');
      });
    }
  }

  private healthState(): DeviceState {
    return this.authRefused ? 'fault' : deviceState(this.connected && this.identified, this.problem());
  }

  health(): DeviceHealth {
    const online = this.connected && this.identified;
    const problem = this.problem();
    const state = this.healthState();
    return {
      id: this.cfg.id,
      kind: this.kind,
      name: this.cfg.name ?? this.cfg.id,
      state,
      ...((this.authRefused || (online && problem)) && { reason: this.authRefused ?? problem!.reason }),
      lastSeen: this.lastSeen?.toISOString() ?? null,
      since: this.since.toISOString(),
      detail: {
        target: this.cfg.url,
        printerState: this.stateNow,
        busy: this.busy,
        moonraker: this.moonraker,
        klippy: { state: this.klippyState, message: this.klippyMessage || null },
        temperatures: this.temps,
        fault: this.fault,
        job: this.currentJob,
        lastJob: this.lastJob,
        filament: { ...this.cfg.filament, densityGPerCm3: this.spec.densityGPerCm3 },
        link: { connected: this.connected, reconnectDelayMs: this.delayMs, ...this.counters },
        protocol: this.rpcStats(),
      },
    };
  }

  // ---- connection ----

  private connect(): void {
    if (this.stopped) return;
    const url = new URL('websocket', this.cfg.url.endsWith('/') ? this.cfg.url : `${this.cfg.url}/`);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url, { handshakeTimeout: this.cfg.requestTimeoutMs, headers: this.cfg.apiKey ? { 'X-Api-Key': this.cfg.apiKey } : {} });
    this.ws = ws;
    ws.on('open', () => void this.onOpen(ws));
    ws.on('message', (data, isBinary) => {
      if (ws !== this.ws || isBinary) return;
      this.lastSeen = this.now();
      this.rpc?.onMessage(data.toString());
    });
    ws.on('pong', () => (this.pongDue = false));
    ws.on('unexpected-response', (_req, res) => {
      // a reverse proxy (or Moonraker in front of one) refusing the upgrade
      const refused = res.statusCode === 401 || res.statusCode === 403;
      if (refused) this.onAuthRefused(`HTTP ${res.statusCode} ${res.statusMessage ?? ''}`.trim());
      else this.lose(ws, `HTTP ${res.statusCode} on the websocket upgrade`);
      ws.terminate();
    });
    ws.on('error', (err) => this.lose(ws, err.message));
    ws.on('close', (code, reason) => this.lose(ws, `closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`));
  }

  private async onOpen(ws: WebSocket): Promise<void> {
    if (ws !== this.ws) return;
    this.connected = true;
    this.lastSeen = this.now();
    this.counters.connects++;
    const rpc = (this.rpc = new RpcClient(
      ws,
      this.cfg.requestTimeoutMs,
      (method, params) => this.onNotification(method, params),
      (method) => this.lose(ws, `no answer to ${method} within ${this.cfg.requestTimeoutMs} ms`),
    ));
    this.pingTimer = setInterval(() => {
      if (this.pongDue) return this.lose(ws, `no answer to a ping within ${PING_MS} ms`);
      this.pongDue = true;
      ws.ping();
    }, PING_MS);
    try {
      await rpc
        .request('server.connection.identify', {
          client_name: 'ovn-gateway',
          version: VERSION,
          type: 'other',
          url: 'https://github.com/ovn-gateway',
          ...(this.cfg.apiKey && { api_key: this.cfg.apiKey }),
        })
        .catch((err: unknown) => {
          // a Moonraker without the method (an old one) still serves the rest
          if (!(err instanceof RpcError) || err.code !== -32601) throw err;
        });
      const info = await rpc.request<{ klippy_connected?: boolean; klippy_state?: string; moonraker_version?: string; api_version_string?: string }>('server.info');
      if (ws !== this.ws) return;
      this.moonraker = { version: String(info.moonraker_version ?? 'unknown'), apiVersion: String(info.api_version_string ?? 'unknown') };
      this.identified = true;
      if (this.authRefused !== null) this.journal.record('device.fault-cleared', this.cfg.id, { kind: 'auth-refused', text: this.authRefused, by: 'Moonraker accepted the gateway' });
      this.authRefused = null;
      this.journal.record(this.everConnected ? 'device.reconnected' : 'device.connected', this.cfg.id, { target: this.cfg.url });
      this.journal.record('device.hello', this.cfg.id, { firmware: `Moonraker ${this.moonraker.version}`, apiVersion: this.moonraker.apiVersion, klippy: info.klippy_state ?? null });
      this.everConnected = true;
      this.delayMs = this.cfg.reconnect.initialMs;
      this.log.info({ moonraker: this.moonraker.version, klippy: info.klippy_state }, 'Moonraker connected');
      this.klippyState = info.klippy_state ?? null;
      this.updateState();
      if (info.klippy_connected !== false && OBJECTS_READABLE.has(info.klippy_state ?? '')) await this.subscribe(rpc, ws);
      // else: notify_klippy_ready says when Klipper is there
    } catch (err) {
      if (ws !== this.ws) return;
      if (isAuthRefusal(err)) return this.onAuthRefused((err as Error).message);
      this.lose(ws, `while connecting: ${(err as Error).message}`);
    }
  }

  private async subscribe(rpc: RpcClient, ws: WebSocket): Promise<void> {
    const res = await rpc.request<{ status?: unknown }>('printer.objects.subscribe', { objects: SUBSCRIPTION });
    if (ws !== this.ws) return;
    this.status = mergeStatus({}, res.status);
    this.printStateBefore = undefined;
    this.subscribed = true;
    await this.recover(rpc, ws);
    if (ws !== this.ws) return;
    this.evaluate();
  }

  /** The socket is gone (or must go): the job stays open, the connection is tried again with backoff. */
  private lose(ws: WebSocket, reason: string): void {
    if (ws !== this.ws || this.stopped) return;
    const wasConnected = this.connected;
    this.dropSocket();
    ws.terminate();
    if (wasConnected) {
      this.counters.disconnects++;
      this.journal.record('device.lost', this.cfg.id, { reason });
      this.log.warn({ reason, job: this.job?.file ?? null }, `Moonraker connection lost: ${reason}`);
    } else this.warnings.warn('connect', { reason }, `cannot reach Moonraker at ${this.cfg.url}: ${reason}`);
    if (this.job) this.job.away = true;
    this.updateState();
    this.retryIn(this.delayMs);
    this.delayMs = Math.min(this.cfg.reconnect.maxMs, this.delayMs * 2);
  }

  private onAuthRefused(text: string): void {
    const ws = this.ws;
    this.dropSocket();
    ws?.terminate();
    this.counters.authFailures++;
    const reason = `Moonraker refused the gateway: ${text}. ${this.cfg.apiKey ? 'Check apiKey' : 'Give apiKey, or add the gateway to [authorization] trusted_clients'}; tried again in ${this.cfg.authRetryS} s`;
    if (this.authRefused === null) {
      this.journal.record('device.fault', this.cfg.id, { kind: 'auth-refused', text: reason });
      this.log.error(reason);
    }
    this.authRefused = reason;
    if (this.job) this.job.away = true;
    this.updateState();
    this.retryIn(this.cfg.authRetryS * 1000);
  }

  private retryIn(ms: number): void {
    if (this.stopped) return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    // jitter: printers that dropped together do not come back together
    this.reconnectTimer = setTimeout(() => this.connect(), Math.round(ms * (0.8 + Math.random() * 0.4)));
  }

  private dropSocket(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.pongDue = false;
    if (this.rpc) this.rpcTotals = this.rpcStats();
    this.rpc?.close('the gateway dropped the connection');
    this.rpc = null;
    this.ws = null;
    this.connected = this.identified = this.subscribed = false;
  }

  private rpcStats() {
    const s = this.rpc?.stats;
    const t = this.rpcTotals;
    return s ? { requests: t.requests + s.requests, errors: t.errors + s.errors, timeouts: t.timeouts + s.timeouts, notifications: t.notifications + s.notifications, malformed: t.malformed + s.malformed } : { ...t };
  }

  // ---- what the host says ----

  private onNotification(method: string, params: unknown): void {
    const ws = this.ws;
    const rpc = this.rpc;
    if (!ws || !rpc) return;
    switch (method) {
      case 'notify_status_update': {
        if (!this.subscribed) return;
        this.counters.statusUpdates++;
        this.status = mergeStatus(this.status, Array.isArray(params) ? params[0] : undefined);
        return this.evaluate();
      }
      case 'notify_history_changed':
        return this.onHistory(params);
      case 'notify_klippy_ready':
        this.klippyState = 'ready';
        this.subscribe(rpc, ws).catch((err: Error) => this.lose(ws, `subscribing after Klipper became ready: ${err.message}`));
        return;
      case 'notify_klippy_shutdown':
        this.klippyState = 'shutdown';
        // the webhooks object brings Klipper's words; printer.info has them too
        rpc.request<{ state_message?: string }>('printer.info').then(
          (i) => this.onKlippyFault('shutdown', (i.state_message ?? '').trim()),
          () => this.onKlippyFault('shutdown', ''),
        );
        return;
      case 'notify_klippy_disconnected':
        this.klippyState = 'disconnected';
        this.subscribed = false;
        if (this.job) this.endJob(this.job, 'interrupted', 'Klipper disconnected from Moonraker (its service stopped or restarted)');
        this.updateState();
        return;
    }
  }

  /**
   * Everything the status now says: the job's filament and progress first (an update that stops
   * the print carries its last figure), then Klipper's state, then whether a job started or
   * ended. A job opens when print_stats goes into printing and ends when it leaves it: a job
   * the history announced stays open until print_stats has printed it, or the history ends it.
   */
  private evaluate(): void {
    const s = this.status;
    this.temps = temperaturesOf(s) ?? this.temps;
    const job = this.job;
    const used = filamentUsedMm(s);
    if (job && !job.away && used !== undefined && jobFile(s) === job.file) job.mm = Math.max(job.mm, used);
    const progress = progressOf(s);
    if (job && !job.away && progress !== undefined && progress !== job.progress && jobFile(s) === job.file) {
      job.progress = progress;
      this.emit('progress', { jobId: job.id, progress });
    }
    const k = klippyOf(s);
    if (k.state) {
      this.klippyState = k.state;
      if (k.state === 'shutdown' || k.state === 'error') this.onKlippyFault(k.state, k.message);
      else if (k.state === 'ready' && this.fault) this.clearKlippyFault();
    }
    const state = printState(s);
    const was = this.printStateBefore;
    this.printStateBefore = state;
    const wasPrinting = was === 'printing' || was === 'paused';
    if (this.job && !this.job.away) {
      if (isPrinting(s)) this.job.paused = state === 'paused';
      else if (wasPrinting) this.endJob(this.job, outcomeOfPrintState(state), hostReason(s, state));
    }
    if (!this.job && isPrinting(s) && !wasPrinting && !this.fault) this.openJob(s, null);
    this.updateState();
  }

  /** `notify_history_changed`: a job added or finished, with the host's figures (a print too short to be seen printing, a job that ends before its last status). */
  private onHistory(params: unknown): void {
    const p = (Array.isArray(params) ? params[0] : undefined) as { action?: unknown; job?: unknown } | undefined;
    const h = historyJobs({ jobs: [p?.job] })[0];
    if (!h || !this.subscribed) return;
    const job = this.job && !this.job.away && (this.job.hostJobId === h.job_id || (this.job.hostJobId === null && this.job.file === h.filename)) ? this.job : null;
    const outcome = outcomeOfHistory(h.status);
    if (job) {
      job.hostJobId ??= h.job_id;
      if (outcome === null) return;
      job.mm = Math.max(job.mm, h.filament_used);
      return this.endJob(job, outcome, `${this.historyReason(h.status)} (Moonraker history: ${h.status})`, round(h.total_duration, 1));
    }
    if (p?.action !== 'added' || this.job || this.endedHostJobs.has(h.job_id)) return;
    const opened = this.openJob(this.status, h);
    if (outcome !== null) {
      opened.mm = Math.max(opened.mm, h.filament_used);
      this.endJob(opened, outcome, `too short to be seen printing (Moonraker history: ${h.status})`, round(h.total_duration, 1));
    }
  }

  /** Why a job ended, by its history status, in the host's words where it gave any. */
  private historyReason(status: string): string {
    const message = String(this.status.print_stats?.message ?? '').trim();
    switch (status) {
      case 'completed':
        return 'the host finished the print';
      case 'cancelled':
        return 'cancelled on the host';
      case 'klippy_shutdown':
        return this.fault?.text ?? (message || 'Klipper shut down');
      case 'klippy_disconnect':
        return 'Klipper disconnected from Moonraker';
      default:
        return message || `the host ended the print`;
    }
  }

  private onKlippyFault(kind: string, message: string): void {
    const text = message || `Klipper ${kind}`;
    if (this.fault?.text === text) return;
    this.counters.klippyShutdowns++;
    this.klippyMessage = text;
    this.fault = { kind: `klippy-${kind}`, text, at: this.now().toISOString() };
    this.journal.record('device.fault', this.cfg.id, { kind: this.fault.kind, text });
    this.log.error({ kind }, `printer fault: ${text}`);
    if (this.job && !this.job.away) this.endJob(this.job, 'failed', text);
    this.updateState();
  }

  private clearKlippyFault(): void {
    const f = this.fault!;
    this.journal.record('device.fault-cleared', this.cfg.id, { kind: f.kind, text: f.text, by: 'Klipper is ready again' });
    this.log.info('Klipper ready again: fault cleared');
    this.fault = null;
    this.klippyMessage = '';
  }

  // ---- jobs ----

  /** A print the host started (its screen, Mainsail, the API): its start is journaled with the host's history id. */
  private openJob(s: HostObjects, history: HistoryJob | null): HostJob {
    const sameFile = history === null || jobFile(s) === history.filename;
    const job: HostJob = {
      id: randomUUID(),
      hostJobId: history?.job_id ?? null,
      file: history?.filename ?? jobFile(s),
      startedAt: this.now(),
      startedMono: performance.now(),
      paused: sameFile && printState(s) === 'paused',
      mm: (sameFile ? filamentUsedMm(s) : undefined) ?? 0,
      progress: (sameFile ? progressOf(s) : undefined) ?? 0,
      journaled: false,
      away: false,
      journalStart: () => {
        if (job.journaled) return;
        job.journaled = true;
        this.jobs.started({ jobId: job.id, mode: 'sd', file: job.file }, { hostJobId: job.hostJobId, host: 'moonraker' });
      },
    };
    this.job = job;
    this.materials.push({ jobId: job.id, material: this.material() });
    this.log.info({ jobId: job.id, file: job.file }, `job started on the host: ${job.file}`);
    const rpc = this.rpc;
    if (job.hostJobId !== null || !rpc) {
      job.journalStart();
      return job;
    }
    rpc.request('server.history.list', { limit: 1, order: 'desc' }).then(
      (res) => {
        const h = historyJobs(res)[0];
        if (h && h.status === 'in_progress' && h.filename === job.file && !this.endedHostJobs.has(h.job_id)) job.hostJobId ??= h.job_id;
        job.journalStart();
      },
      () => job.journalStart(),
    );
    return job;
  }

  private endJob(job: HostJob, outcome: JobOutcome, reason: string, durationS?: number): void {
    job.journalStart();
    if (job.hostJobId) this.endedHostJobs.add(job.hostJobId);
    if (this.job === job) this.job = null;
    const info = this.info(job, outcome);
    this.lastJob = info;
    this.endedJobsMm = addPerExtruder(this.endedJobsMm, [job.mm]);
    const entry = this.materials.find((m) => m.jobId === job.id);
    if (entry) entry.material = info.material;
    this.jobs.ended({
      jobId: job.id,
      mode: 'sd',
      file: job.file,
      outcome,
      reason,
      filamentMm: info.filamentMm,
      filamentG: info.filamentG,
      material: info.material,
      durationS: durationS ?? round((performance.now() - job.startedMono) / 1000, 1),
    });
    this.log.info({ jobId: job.id, outcome, filamentG: info.filamentG }, `job ${outcome}: ${job.file} (${reason})`);
    this.emit('job', info);
    this.updateState();
  }

  /**
   * After (re)connecting: the jobs the journal holds open — this run's, away since the connection
   * dropped, and those a gateway that stopped left behind — end as the host's history says, or
   * are followed on when the host still prints them.
   */
  private async recover(rpc: RpcClient, ws: WebSocket): Promise<void> {
    const open = this.jobs.open<HostJobStarted>();
    const away = this.job?.away ? this.job : null;
    if (open.length === 0 && !away) return;
    let history: HistoryJob[] | null = null;
    try {
      history = historyJobs(await rpc.request('server.history.list', { limit: this.cfg.historyJobs, order: 'desc' }));
    } catch (err) {
      if (ws !== this.ws) return;
      this.log.warn(`Moonraker's job history could not be read (${(err as Error).message}): the jobs open since the gateway was away end with their last checkpoint`);
    }
    const s = this.status;
    const running = isPrinting(s) ? history?.find((h) => h.status === 'in_progress' && h.filename === fileName(s)) : undefined;
    const follow = (job: HostJob) => {
      job.away = false;
      job.hostJobId ??= running?.job_id ?? null;
      job.mm = Math.max(job.mm, filamentUsedMm(s) ?? 0);
      this.job = job;
      this.log.info({ jobId: job.id, file: job.file }, `following the host's print of ${job.file} on`);
    };
    const matches = (hostJobId: string | null | undefined, file: string) => running !== undefined && (hostJobId ? hostJobId === running.job_id : file === running.filename);
    if (away) {
      if (matches(away.hostJobId, away.file)) follow(away);
      else this.endAway(away, history);
    }
    for (const o of open) {
      if (o.started.jobId === away?.id || o.started.jobId === this.job?.id) continue;
      this.counters.historyRecoveries++;
      const job: HostJob = {
        id: o.started.jobId,
        hostJobId: o.started.hostJobId ?? null,
        file: o.started.file,
        startedAt: new Date(o.startedAt),
        startedMono: performance.now() - (this.now().getTime() - Date.parse(o.startedAt)),
        paused: false,
        mm: o.checkpoint?.data.filamentMm ?? 0,
        progress: o.checkpoint?.data.progress ?? 0,
        journaled: true,
        away: true,
        journalStart: () => {},
      };
      if (!this.materials.some((m) => m.jobId === job.id)) this.materials.push({ jobId: job.id, material: this.material() });
      if (!this.job && matches(job.hostJobId, job.file)) follow(job);
      else this.endAway(job, history);
    }
  }

  /** A job that ended while the gateway was away: with the host's figures when its history has it, else with what was last read. */
  private endAway(job: HostJob, history: HistoryJob[] | null): void {
    const h = job.hostJobId ? history?.find((x) => x.job_id === job.hostJobId) : undefined;
    const outcome = h ? outcomeOfHistory(h.status) : null;
    if (h && outcome) {
      job.mm = Math.max(job.mm, h.filament_used);
      return this.endJob(job, outcome, `ended while the gateway was away (Moonraker history: ${h.status})`, round(h.total_duration, 1));
    }
    this.endJob(job, 'interrupted', history ? "ended while the gateway was away; Moonraker's history does not have it: filament as last read" : "ended while the gateway was away; Moonraker's history could not be read: filament as last read");
  }

  private material(): Material {
    return { source: 'printer-counter', uncertaintyMm: this.cfg.maxRetractionMm, flagged: null };
  }

  private info(job: HostJob, state: JobInfo['state']): JobInfo {
    return {
      id: job.id,
      mode: 'sd',
      file: job.file,
      startedAt: job.startedAt.toISOString(),
      state,
      progress: Math.min(1, Math.max(0, job.progress)),
      filamentMm: round(job.mm, 3),
      filamentG: round(gramsOf(job.mm, this.spec), 3),
      material: this.material(),
    };
  }

  private checkpoint(): void {
    const job = this.job;
    if (!job?.journaled) return;
    const info = this.info(job, 'printing');
    const data: JobCheckpoint = { filamentMm: info.filamentMm, filamentG: info.filamentG, material: info.material, progress: info.progress, durationS: round((performance.now() - job.startedMono) / 1000, 1) };
    try {
      this.jobs.checkpoint(job.id, data, this.now());
    } catch (err) {
      if (storageProblemOf(err) === null) throw err;
    }
  }

  private problem(): DeviceProblem | null {
    if (this.fault) return { state: 'fault', reason: this.fault.text };
    if (this.connected && this.identified && !this.subscribed) return { state: 'unresponsive', reason: `Klipper is not ready (Moonraker says klippy ${this.klippyState ?? 'unknown'})` };
    return null;
  }

  private updateState(): void {
    const health = this.healthState();
    if (health !== this.healthNow) {
      this.healthNow = health;
      this.since = this.now();
    }
    const refused = this.authRefused !== null;
    const next = printerStateOf({
      connected: this.connected || refused,
      ready: this.subscribed || refused || (this.identified && this.fault !== null),
      faulted: this.fault !== null || refused,
      job: this.job && !this.job.away ? this.job : null,
      temps: this.temps,
    });
    if (next === this.stateNow) return;
    this.stateNow = next;
    this.emit('state', next);
  }
}

/** The file a job is named after: print_stats.filename, relative to the host's gcodes folder. */
function jobFile(s: HostObjects): string {
  return fileName(s) || 'unnamed';
}

/** Moonraker answers a request it will not take from an unauthenticated client with 401, sent over JSON-RPC as -32602 "Unauthorized". */
function isAuthRefusal(err: unknown): boolean {
  return err instanceof RpcError && (err.code === 401 || err.code === 403 || /unauthori[sz]ed|api key|forbidden/i.test(err.message));
}

/** Why a job ended, in the host's words where it gave any. */
function hostReason(s: HostObjects, state: string | undefined): string {
  const message = String(s.print_stats?.message ?? '').trim();
  if (message) return message;
  switch (state) {
    case 'complete':
      return 'the host finished the print';
    case 'cancelled':
      return 'cancelled on the host';
    case 'error':
      return 'the host stopped the print with an error';
    default:
      return `the host left printing (print_stats: ${state ?? 'unknown'})`;
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

