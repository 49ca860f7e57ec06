/**
 * A simulated Prusa printer with PrusaLink, on a real HTTP server, built from PrusaLink's
 * OpenAPI document (github.com/prusa3d/Prusa-Link-Web, spec/openapi.yaml):
 *
 * - digest authentication on every endpoint (`securitySchemes: digestAuth`; RFC 7616, MD5,
 *   qop=auth, realm "Printer API"), or the older `X-Api-Key`; anything else is 401 with the
 *   challenge;
 * - `GET /api/version`, `GET /api/v1/info` (Info), `GET /api/v1/status` (StatusPrinter: state
 *   IDLE|BUSY|PRINTING|PAUSED|FINISHED|STOPPED|ERROR|ATTENTION|READY, temperatures; StatusJob:
 *   id, progress in percent, time_printing);
 * - `GET /api/v1/job` (Job with JobFilePrint's file and its refs.download; 204 when there is no
 *   job), `DELETE /api/v1/job/{id}` (stop), `PUT /api/v1/job/{id}/pause|resume`: 204, or 404 for
 *   another id, 409 when the job is not in a state for it;
 * - the file download at `refs.download` (`/api/files/usb/<name>/raw`), and 404 for any other path.
 *
 * The printer behind it is the same printing machine as the simulated Klipper host
 * (../moonraker/klipper.ts, on the serial printer's physical model: ground truth filament).
 * Faults: the network (`unplug`/`replug`), the password changes (auth refused), an error that
 * stops the print (`error <message>`), cleared by `clear-error`.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { expectedResponse, parseAuthorization } from '../../../gateway/src/devices/prusalink/digest.js';
import { KlipperSim, type KlipperOptions } from '../moonraker/klipper.js';

export interface PrusaLinkSimOptions extends KlipperOptions {
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  /** Accepted as X-Api-Key as well (older PrusaLink); null: not accepted. */
  apiKey?: string | null;
}

const REALM = 'Printer API';

export class PrusaLinkSim {
  readonly machine: KlipperSim;
  private server: Server | null = null;
  private boundPort = 0;
  private readonly nonce = randomBytes(16).toString('hex');
  private readonly opts: { host: string; username: string; password: string; apiKey: string | null };
  readonly stats = { requests: 0, refused: 0 };

  private constructor(opts: PrusaLinkSimOptions) {
    this.machine = new KlipperSim({ sensorNoiseC: 0, ...opts });
    this.opts = { host: opts.host ?? '127.0.0.1', username: opts.username ?? 'maker', password: opts.password ?? 'sim-password', apiKey: opts.apiKey ?? null };
  }

  static async start(opts: PrusaLinkSimOptions = {}): Promise<PrusaLinkSim> {
    const sim = new PrusaLinkSim(opts);
    await sim.listen(opts.port ?? 0);
    return sim;
  }

  get url(): string {
    return `http://${this.opts.host}:${this.boundPort}`;
  }

  /** The password changes (set anew on the printer's screen): the gateway's is refused. */
  setPassword(password: string): void {
    this.opts.password = password;
  }

  async unplug(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  async replug(): Promise<void> {
    if (!this.server) await this.listen(this.boundPort);
  }

  async close(): Promise<void> {
    this.machine.close();
    await this.unplug();
  }

  /** The job as PrusaLink numbers it: its history entry. */
  private currentJob(): { id: number; file: string; size: number } | null {
    const h = this.machine.history[0];
    return h ? { id: parseInt(h.job_id, 16), file: h.filename, size: h.metadata.size } : null;
  }

  private printerState(): string {
    const o = this.machine.objects();
    if (this.machine.klippy !== 'ready') return 'ERROR';
    switch (o.print_stats!.state) {
      case 'printing':
        return 'PRINTING';
      case 'paused':
        return 'PAUSED';
      case 'complete':
        return 'FINISHED';
      case 'cancelled':
        return 'STOPPED';
      case 'error':
        return 'ERROR';
      default:
        return 'IDLE';
    }
  }

  private async listen(port: number): Promise<void> {
    const server = createServer((req, res) => this.onRequest(req, res));
    server.listen(port, this.opts.host);
    await once(server, 'listening');
    this.boundPort = (server.address() as { port: number }).port;
    this.server = server;
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.opts.apiKey !== null && req.headers['x-api-key'] === this.opts.apiKey) return true;
    const f = parseAuthorization(req.headers.authorization);
    if (!f || f.get('username') !== this.opts.username || f.get('realm') !== REALM || f.get('nonce') !== this.nonce) return false;
    if (f.get('uri') !== req.url) return false;
    return f.get('response') === expectedResponse(f, this.opts.password, req.method ?? 'GET');
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.stats.requests++;
    const json = (status: number, body?: unknown) => {
      res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    if (!this.authorized(req)) {
      this.stats.refused++;
      res.writeHead(401, { 'www-authenticate': `Digest realm="${REALM}", nonce="${this.nonce}", qop="auth", algorithm=MD5`, 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ title: 'Unauthorized', message: 'Unauthorized' }));
    }
    const url = new URL(req.url ?? '/', 'http://sim');
    const path = url.pathname;
    const m = this.machine;
    const job = this.currentJob();
    const o = m.objects();
    const progress = Math.floor(((o.virtual_sdcard!.progress as number) ?? 0) * 100);
    const state = this.printerState();
    if (req.method === 'GET' && path === '/api/version') return json(200, { api: '2.0.0', server: '2.1.2', original: 'PrusaLink MK4', text: 'PrusaLink', hostname: 'prusa-mk4-sim' });
    if (req.method === 'GET' && path === '/api/v1/info') return json(200, { mmu: false, name: 'Simulated MK4', location: 'lab', farm_mode: false, nozzle_diameter: 0.4, min_extrusion_temp: 170, serial: 'SIM00000001', sd_ready: true, hostname: 'prusa-mk4-sim' });
    if (req.method === 'GET' && path === '/api/v1/status') {
      const e = o.extruder!;
      const b = o.heater_bed!;
      return json(200, {
        printer: {
          state,
          temp_nozzle: e.temperature,
          target_nozzle: e.target,
          temp_bed: b.temperature,
          target_bed: b.target,
          ...(state === 'ERROR' && { status_printer: { ok: false, message: m.klippyMessage.split('\n')[0] } }),
        },
        ...(job && ['PRINTING', 'PAUSED'].includes(state) && { job: { id: job.id, progress, time_printing: Math.round(o.print_stats!.print_duration as number) } }),
      });
    }
    if (req.method === 'GET' && path === '/api/v1/job') {
      if (!job || state === 'IDLE') return json(204);
      return json(200, {
        id: job.id,
        state: ['PRINTING', 'PAUSED', 'FINISHED', 'STOPPED', 'ERROR'].includes(state) ? state : 'PRINTING',
        progress: state === 'FINISHED' ? 100 : progress,
        time_printing: Math.round(o.print_stats!.print_duration as number),
        file: { name: job.file, display_name: job.file, path: '/usb', display_path: '/USB', size: job.size, m_timestamp: 0, refs: { download: `/api/files/usb/${encodeURIComponent(job.file)}/raw` } },
      });
    }
    const jobOp = /^\/api\/v1\/job\/(\d+)(?:\/(pause|resume|continue))?$/.exec(path);
    if (jobOp) {
      if (!job || Number(jobOp[1]) !== job.id) return json(404, { title: 'Not Found', message: `No job ${jobOp[1]}` });
      const op = jobOp[2];
      try {
        if (req.method === 'DELETE' && !op) m.cancel();
        else if (req.method === 'PUT' && op === 'pause') m.pause();
        else if (req.method === 'PUT' && op === 'resume') m.resume();
        else return json(405, { title: 'Method Not Allowed' });
      } catch (err) {
        return json(409, { title: 'Conflict', message: (err as Error).message });
      }
      return json(204);
    }
    const file = /^\/api\/files\/usb\/(.+)\/raw$/.exec(path);
    if (req.method === 'GET' && file) {
      const name = decodeURIComponent(file[1]!);
      const text = m.files[name];
      if (text === undefined) return json(404, { title: 'Not Found', message: `No file ${name}` });
      res.writeHead(200, { 'content-type': 'text/x.gcode', 'content-length': Buffer.byteLength(text, 'latin1') });
      return void res.end(Buffer.from(text, 'latin1'));
    }
    json(404, { title: 'Not Found', message: `${req.method} ${path}` });
  }
}
