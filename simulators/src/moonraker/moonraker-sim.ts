/**
 * A simulated Moonraker (the API server of a Klipper printer) on a real HTTP server and
 * websocket, built from Moonraker's public documentation (github.com/Arksine/moonraker, docs/):
 *
 * - the websocket at `/websocket` carrying JSON-RPC 2.0 text frames, errors as JSON-RPC error
 *   objects: -32700 parse error, -32600 invalid request, -32601 method not found, -32602 invalid
 *   params, and a request refused for want of authentication answered -32602 "Unauthorized"
 *   (Moonraker maps its 401 to -32602; a missing argument is its 400): external_api/introduction.md
 *   and moonraker/common.py's JsonRPC;
 * - authentication: the X-Api-Key header on the upgrade, a oneshot token in `?token=`, or the
 *   api_key of `server.connection.identify`; without a configured key every client is trusted:
 *   external_api/authorization.md, external_api/server.md ("Identify Connection");
 * - `server.info`, `server.connection.identify`: external_api/server.md;
 * - `printer.info`, `printer.objects.list|query|subscribe`, `printer.print.start|pause|resume|cancel`,
 *   `printer.emergency_stop`, `printer.firmware_restart`, `printer.restart`: external_api/printer.md;
 * - `server.history.list`, `server.history.get_job`: external_api/history.md;
 * - notifications `notify_status_update` (only what changed, every 250 ms at most),
 *   `notify_klippy_ready|shutdown|disconnected`, `notify_history_changed`:
 *   external_api/jsonrpc_notifications.md;
 * - the printer objects and their fields: printer_objects.md (see ./klipper.ts).
 *
 * Faults: the network drops (`unplug`/`replug`), the key changes (auth refused), Moonraker
 * restarts while Klipper prints on (`restart-host`), Klipper shuts down (`shutdown`).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { KlipperSim, type KlipperOptions } from './klipper.js';

export interface MoonrakerSimOptions extends KlipperOptions {
  host?: string;
  /** 0: any free port. */
  port?: number;
  /** The API key Moonraker requires; null: every client is trusted (trusted_clients). */
  apiKey?: string | null;
  /** Milliseconds between status notifications at most (Moonraker forwards Klipper's, 250 ms apart). */
  statusIntervalMs?: number;
}

const MOONRAKER_VERSION = 'v0.9.3-sim';
const API_VERSION = [1, 5, 0];
/** Methods a client may call before it is authenticated (auth_required=False in Moonraker). */
const OPEN_METHODS = new Set(['server.connection.identify', 'access.oneshot_token']);

class RpcFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface Client {
  ws: WebSocket;
  authed: boolean;
  identified: boolean;
  subscription: Record<string, string[] | null>;
  /** What this client was last sent of its subscription, to send only changes. */
  sent: Record<string, Record<string, unknown>>;
}

export class MoonrakerSim {
  readonly klipper: KlipperSim;
  private readonly opts: Required<Omit<MoonrakerSimOptions, keyof KlipperOptions>>;
  private server: Server | null = null;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly clients = new Set<Client>();
  private readonly oneshot = new Set<string>();
  private boundPort = 0;
  private statusTimer: NodeJS.Timeout | null = null;
  private changed = false;
  private historyNotified = new Map<string, string>();
  readonly stats = { connections: 0, refusedRequests: 0, requests: 0 };

  private constructor(opts: MoonrakerSimOptions) {
    this.klipper = new KlipperSim(opts);
    this.opts = { host: opts.host ?? '127.0.0.1', port: opts.port ?? 0, apiKey: opts.apiKey ?? null, statusIntervalMs: opts.statusIntervalMs ?? 250 };
    this.klipper.on('change', () => (this.changed = true));
    this.klipper.on('klippy', (s) => this.onKlippy(s));
  }

  static async start(opts: MoonrakerSimOptions = {}): Promise<MoonrakerSim> {
    const sim = new MoonrakerSim(opts);
    await sim.listen(opts.port ?? 0);
    sim.statusTimer = setInterval(() => sim.pushStatus(), sim.opts.statusIntervalMs);
    return sim;
  }

  get url(): string {
    return `http://${this.opts.host}:${this.boundPort}`;
  }

  get port(): number {
    return this.boundPort;
  }

  get apiKey(): string | null {
    return this.opts.apiKey;
  }

  /** The key changes (a user regenerated it): clients authenticated with the old one stay connected, new ones with it are refused. */
  setApiKey(key: string | null): void {
    this.opts.apiKey = key;
  }

  async close(): Promise<void> {
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.klipper.close();
    await this.unplug();
    this.wss.close();
  }

  /** The network drops: every connection is cut and none is taken until replug. */
  async unplug(): Promise<void> {
    for (const c of this.clients) c.ws.terminate();
    this.clients.clear();
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

  /** Moonraker restarts (a service restart, an update): its connections close, it is away for `ms`, Klipper prints on. */
  async restartHost(ms: number): Promise<void> {
    for (const c of this.clients) c.ws.close(1001, 'Server shutdown');
    await this.unplug();
    setTimeout(() => void this.replug(), ms);
  }

  // ---- transport ----

  private async listen(port: number): Promise<void> {
    const server = createServer((req, res) => this.onHttp(req, res));
    server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    server.listen(port, this.opts.host);
    await once(server, 'listening');
    this.boundPort = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** The HTTP API, what a person checks with curl: /server/info; the rest is left to the websocket. */
  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://sim');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (!this.authorized(req, url)) return send(401, { error: { code: 401, message: 'Unauthorized' } });
    if (req.method === 'GET' && url.pathname === '/server/info') return send(200, { result: this.serverInfo() });
    if (req.method === 'GET' && url.pathname === '/access/oneshot_token') {
      const token = randomBytes(16).toString('hex');
      this.oneshot.add(token);
      return send(200, { result: token });
    }
    send(404, { error: { code: 404, message: 'Not Found' } });
  }

  private authorized(req: IncomingMessage, url: URL): boolean {
    if (this.opts.apiKey === null) return true;
    if (req.headers['x-api-key'] === this.opts.apiKey) return true;
    const token = url.searchParams.get('token');
    if (token && this.oneshot.delete(token)) return true;
    return false;
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://sim');
    if (url.pathname !== '/websocket') {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    // Moonraker accepts the socket whatever the key; an unauthenticated one may only identify (websockets.py, prepare)
    const authed = this.authorized(req, url);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.stats.connections++;
      const client: Client = { ws, authed, identified: false, subscription: {}, sent: {} };
      this.clients.add(client);
      ws.on('message', (data) => this.onMessage(client, data.toString()));
      ws.on('close', () => this.clients.delete(client));
      ws.on('error', () => {});
    });
  }

  // ---- JSON-RPC ----

  private onMessage(c: Client, text: string): void {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch {
      return this.send(c, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
    }
    const items = Array.isArray(obj) ? obj : [obj];
    const answers = items.map((o) => this.process(c, o)).filter((a) => a !== null);
    if (answers.length) this.send(c, Array.isArray(obj) ? answers : answers[0]);
  }

  private process(c: Client, o: unknown): unknown {
    const req = (o ?? {}) as { jsonrpc?: unknown; method?: unknown; params?: unknown; id?: unknown };
    const id = req.id ?? null;
    if (req.jsonrpc !== '2.0') return { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' }, id };
    if (req.method === undefined) return null; // a response to a request of ours: there are none
    if (typeof req.method !== 'string') return { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' }, id };
    const handler = this.methods[req.method];
    if (!handler) return { jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id };
    if (req.params !== undefined && (req.params === null || typeof req.params !== 'object' || Array.isArray(req.params))) return { jsonrpc: '2.0', error: { code: -32602, message: 'Invalid params:' }, id };
    this.stats.requests++;
    try {
      if (!c.authed && !OPEN_METHODS.has(req.method)) throw new RpcFailure(401, 'Unauthorized');
      const result = handler(c, new Params(req.params as Record<string, unknown> | undefined));
      return id === null ? null : { jsonrpc: '2.0', result, id };
    } catch (err) {
      const f = err instanceof RpcFailure ? err : new RpcFailure(500, (err as Error).message);
      if (f.code === 401) this.stats.refusedRequests++;
      // Moonraker: a 404 goes out as -32601, a 401 as -32602 (common.py, execute_method)
      const code = f.code === 404 ? -32601 : f.code === 401 ? -32602 : f.code;
      return { jsonrpc: '2.0', error: { code, message: f.message }, id };
    }
  }

  private readonly methods: Record<string, (c: Client, p: Params) => unknown> = {
    'server.connection.identify': (c, p) => {
      if (c.identified) throw new RpcFailure(400, 'Connection already identified');
      for (const k of ['client_name', 'version', 'type', 'url']) p.str(k);
      const type = p.str('type').toLowerCase();
      const apiKey = p.optStr('api_key');
      if (apiKey !== undefined && !c.authed) {
        if (this.opts.apiKey === null || apiKey !== this.opts.apiKey) throw new RpcFailure(401, 'Invalid API Key');
        c.authed = true;
      } else if (!c.authed) throw new RpcFailure(401, 'Unauthorized');
      if (!['web', 'mobile', 'desktop', 'display', 'bot', 'agent', 'other'].includes(type)) throw new RpcFailure(400, `Invalid Client Type: ${type}`);
      c.identified = true;
      return { connection_id: this.stats.connections };
    },
    'server.info': () => this.serverInfo(),
    'printer.info': () => {
      this.needKlippy();
      return { state: this.klipper.klippy, state_message: this.klipper.klippyMessage, hostname: 'sim-klipper', software_version: 'v0.12.0-sim', cpu_info: 'simulated', klipper_path: '/home/pi/klipper', python_path: '/home/pi/klippy-env/bin/python', log_file: '/tmp/klippy.log', config_file: '/home/pi/printer_data/config/printer.cfg' };
    },
    'printer.objects.list': () => {
      this.needKlippy();
      return { objects: Object.keys(this.klipper.objects()) };
    },
    'printer.objects.query': (_c, p) => {
      this.needKlippy();
      return { eventtime: performance.now() / 1000, status: this.select(p.objects(), this.klipper.objects()) };
    },
    'printer.objects.subscribe': (c, p) => {
      this.needKlippy();
      c.subscription = p.objects();
      const status = this.select(c.subscription, this.klipper.objects());
      c.sent = structuredClone(status);
      return { eventtime: performance.now() / 1000, status };
    },
    'printer.print.start': (_c, p) => {
      this.needKlippy();
      this.klippyCall(() => this.klipper.startPrint(p.str('filename')));
      return 'ok';
    },
    'printer.print.pause': () => (this.needKlippy(), this.klippyCall(() => this.klipper.pause()), 'ok'),
    'printer.print.resume': () => (this.needKlippy(), this.klippyCall(() => this.klipper.resume()), 'ok'),
    'printer.print.cancel': () => (this.needKlippy(), this.klippyCall(() => this.klipper.cancel()), 'ok'),
    'printer.emergency_stop': () => (this.needKlippy(), this.klipper.shutdown('Shutdown due to webhooks request'), 'ok'),
    'printer.firmware_restart': () => (this.needKlippy(), this.klipper.restartKlipper(), 'ok'),
    'printer.restart': () => (this.needKlippy(), this.klipper.restartKlipper(), 'ok'),
    'server.history.list': (_c, p) => {
      const limit = p.optInt('limit') ?? 50;
      const start = p.optInt('start') ?? 0;
      const order = p.optStr('order') ?? 'desc';
      if (order !== 'asc' && order !== 'desc') throw new RpcFailure(400, `Invalid "order" argument: ${order}`);
      const all = order === 'desc' ? this.klipper.history : [...this.klipper.history].reverse();
      const jobs = all.slice(start, start + limit).map((j) => ({ ...j }));
      return { count: jobs.length, jobs };
    },
    'server.history.get_job': (_c, p) => {
      const uid = p.str('uid');
      const job = this.klipper.history.find((j) => j.job_id === uid);
      if (!job) throw new RpcFailure(404, `Invalid job uid: ${uid}`);
      return { job: { ...job } };
    },
  };

  private serverInfo() {
    const k = this.klipper.klippy;
    return {
      klippy_connected: k !== 'disconnected',
      klippy_state: k,
      components: ['database', 'file_manager', 'klippy_apis', 'machine', 'data_store', 'history', 'authorization', 'websockets'],
      failed_components: [],
      registered_directories: ['config', 'gcodes', 'logs'],
      warnings: [],
      websocket_count: this.clients.size,
      moonraker_version: MOONRAKER_VERSION,
      api_version: API_VERSION,
      api_version_string: API_VERSION.join('.'),
    };
  }

  private needKlippy(): void {
    if (this.klipper.klippy === 'disconnected') throw new RpcFailure(503, 'Klippy Disconnected');
  }

  /** Klipper refuses a G-code command with its words: Moonraker passes them on as a 400. */
  private klippyCall(f: () => void): void {
    try {
      f();
    } catch (err) {
      throw new RpcFailure(400, (err as Error).message);
    }
  }

  /** The requested objects and fields (null: all of them); an unknown object or field is left out without an error. */
  private select(req: Record<string, string[] | null>, all: Record<string, Record<string, unknown>>): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const [name, fields] of Object.entries(req)) {
      const obj = all[name];
      if (!obj) continue;
      out[name] = fields === null ? { ...obj } : Object.fromEntries(fields.filter((f) => f in obj).map((f) => [f, obj[f]]));
    }
    return out;
  }

  // ---- notifications ----

  private send(c: Client, msg: unknown): void {
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify(msg));
  }

  private notify(method: string, params?: unknown[]): void {
    for (const c of this.clients) if (c.authed) this.send(c, { jsonrpc: '2.0', method, ...(params && { params }) });
  }

  /** What changed since each subscriber's last update, at most every statusIntervalMs. */
  private pushStatus(): void {
    this.sendStatus();
    // the history follows print_stats (Moonraker's history component reacts to its changes)
    this.notifyHistory();
  }

  private sendStatus(): void {
    // with noisy thermistors something always changed
    if ((!this.changed && !this.klipper.opts.sensorNoiseC) || this.klipper.klippy === 'disconnected') return;
    this.changed = false;
    const all = this.klipper.objects();
    const eventtime = performance.now() / 1000;
    for (const c of this.clients) {
      if (!c.authed || Object.keys(c.subscription).length === 0) continue;
      const now = this.select(c.subscription, all);
      const diff: Record<string, Record<string, unknown>> = {};
      for (const [name, fields] of Object.entries(now)) {
        const before = c.sent[name] ?? {};
        const changed = Object.entries(fields).filter(([k, v]) => JSON.stringify(before[k]) !== JSON.stringify(v));
        if (changed.length) diff[name] = Object.fromEntries(changed);
      }
      c.sent = structuredClone(now);
      if (Object.keys(diff).length) this.send(c, { jsonrpc: '2.0', method: 'notify_status_update', params: [diff, eventtime] });
    }
  }

  private notifyHistory(): void {
    for (const job of this.klipper.history.slice(0, 3)) {
      const seen = this.historyNotified.get(job.job_id);
      if (seen === job.status) continue;
      this.historyNotified.set(job.job_id, job.status);
      this.notify('notify_history_changed', [{ action: seen === undefined ? 'added' : 'finished', job: { ...job } }]);
    }
  }

  private onKlippy(state: string): void {
    if (state === 'shutdown') {
      this.pushStatus();
      this.notify('notify_klippy_shutdown');
    } else if (state === 'disconnected') {
      // Moonraker's subscriptions end with the connection to Klippy; clients subscribe again when it is ready
      for (const c of this.clients) c.subscription = {};
      this.notify('notify_klippy_disconnected');
    } else if (state === 'ready') this.notify('notify_klippy_ready');
  }
}

/** A request's arguments, checked as Moonraker's WebRequest checks them (a missing or mistyped one is a 400 naming it). */
class Params {
  constructor(private readonly p: Record<string, unknown> | undefined) {}

  str(key: string): string {
    const v = this.p?.[key];
    if (v === undefined) throw new RpcFailure(400, `No data for argument: ${key}`);
    if (typeof v !== 'string') throw new RpcFailure(400, `Unable to convert argument [${key}] to str`);
    return v;
  }

  optStr(key: string): string | undefined {
    return this.p?.[key] === undefined || this.p[key] === null ? undefined : this.str(key);
  }

  optInt(key: string): number | undefined {
    const v = this.p?.[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new RpcFailure(400, `Unable to convert argument [${key}] to int`);
    return v;
  }

  /** `objects`: { name: null | [field, …] }. */
  objects(): Record<string, string[] | null> {
    const v = this.p?.objects;
    if (v === undefined) throw new RpcFailure(400, 'No data for argument: objects');
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new RpcFailure(400, 'Invalid argument [objects]: expected an object');
    for (const [name, fields] of Object.entries(v)) {
      if (fields !== null && !(Array.isArray(fields) && fields.every((f) => typeof f === 'string'))) throw new RpcFailure(400, `Invalid argument [objects]: the value of ${name} must be null or a list of field names`);
    }
    return v as Record<string, string[] | null>;
  }
}
