import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { loadConfig, type LoadedConfig } from '../gateway/src/config/load.js';
import { configSchema } from '../gateway/src/config/schema.js';
import type { RunningGateway, StartOptions } from '../gateway/src/gateway.js';
import { createToken } from '../gateway/src/http/tokens.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { startLab, type RunningLab } from '../simulators/src/lab.js';
import { hasSocat } from '../simulators/src/transports.js';

/** Tests that need socat skip on a laptop without it, and run (and fail loudly) in CI. */
export const skipWithoutSocat = !hasSocat() && process.env.CI !== 'true';

/** The browser tests and benchmarks drive Debian's Chromium; they skip on a laptop without it, never in CI. */
export const CHROMIUM = '/usr/bin/chromium';
export const skipWithoutChromium = !existsSync(CHROMIUM) && process.env.CI !== 'true';

/** For a device whose simulator counts time 60 times faster than life (timeScale 60): its physics must allow it, with room for a loaded machine. */
export const SIM_CLOCK_RATE = 120;

/** A TCP port free on loopback right now. */
export async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  s.close();
  return port;
}

/**
 * The lab of `npm start` (config/simulated-lab.yaml) with its journal in a temp dir, the HTTP API
 * and every simulator on a free port, and whatever reaches one (the devices' socket:// paths, the
 * ledger's URL, the mail channel's port) pointed at its new address. baseDir stays config/, so
 * the scenario files are the lab's own.
 */
export async function simulatedLabOnFreePorts(prefix: string): Promise<LoadedConfig> {
  const loaded = loadConfig(join(import.meta.dirname, '..', 'config', 'simulated-lab.yaml'));
  const cfg = loaded.config;
  cfg.gateway.dataDir = join(tempDir(prefix), 'data');
  cfg.gateway.http.port = 0;
  const moved = new Map<string, string>();
  for (const s of cfg.simulators) {
    if (s.kind === 'rig') continue; // reaches the gateway through its embedded broker
    const listen = `127.0.0.1:${await freePort()}`;
    moved.set(s.listen, listen);
    s.listen = listen;
    if (s.kind === 'mail') s.http = `127.0.0.1:${await freePort()}`;
  }
  const repoint = (node: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(node)) {
      if (typeof v === 'string') node[k] = [...moved].reduce((x, [from, to]) => x.replaceAll(from, to), v);
      else if (v !== null && typeof v === 'object') repoint(v as Record<string, unknown>);
    }
  };
  for (const [k, v] of Object.entries(cfg)) if (k !== 'simulators' && v !== null && typeof v === 'object') repoint(v as Record<string, unknown>);
  // the mail channel names the catcher's port as a number
  for (const c of Object.values(cfg.notifications?.channels ?? {})) if (c.kind === 'email' && moved.has(`${c.host}:${c.port}`)) c.port = Number(moved.get(`${c.host}:${c.port}`)!.split(':')[1]);
  for (const from of moved.keys()) if (JSON.stringify(cfg).includes(from)) throw new Error(`the lab's config still names ${from}`);
  return loaded;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `ovn-${prefix}-`));
}

/** Polls until `check` returns a truthy value (or stops throwing); fails with the last error after `ms`. */
export async function waitFor<T>(check: () => T | Promise<T>, ms = 10_000, what = 'condition'): Promise<Exclude<T, null | undefined | false | '' | 0>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as Exclude<T, null | undefined | false | '' | 0>;
      last = new Error(`${what} not met`);
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw last;
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface TestGateway extends RunningLab {
  logs: Record<string, unknown>[];
  /** An admin API token. */
  token: string;
  /** fetch with the admin token. */
  fetch(url: string, init?: RequestInit): Promise<Response>;
  health(): Promise<{ devices: { id: string; state: string; detail: Record<string, unknown> }[] } & Record<string, unknown>>;
}

/** An admin API token for a gateway, and fetch that sends it. */
export function adminFetch(gw: Pick<RunningGateway, 'journal'>): { token: string; fetch: (url: string, init?: RequestInit) => Promise<Response> } {
  const { token } = createToken(gw.journal, { role: 'admin', name: 'test' });
  return { token, fetch: (url, init) => fetch(url, { ...init, headers: { ...(init?.headers as Record<string, string> | undefined), authorization: `Bearer ${token}` } }) };
}

/** Request options with a new admin token of the gateway whose data directory this is (for a gateway in another process; made before it starts). */
export function adminHeaders(dataDir: string): RequestInit {
  const journal = Journal.open(dataDir);
  try {
    return { headers: { authorization: `Bearer ${createToken(journal, { role: 'admin', name: 'test' }).token}` } };
  } finally {
    journal.close();
  }
}

/** A gateway (with the config's simulators, if any) on a free HTTP port with its journal in a temp dir; its log lines are kept for assertions. */
export async function startTestGateway(config: unknown): Promise<TestGateway> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const dir = tempDir('gw');
  const parsed = configSchema.parse({ ...(config as object), gateway: { dataDir: join(dir, 'data'), ...(config as { gateway?: object }).gateway } });
  const gw = await startLab({ config: parsed, file: join(dir, 'config.yaml'), baseDir: dir }, { httpPort: 0, logger: createLogger({ level: 'debug', format: 'json' }, sink) });
  const { token, fetch: authed } = adminFetch(gw);
  return Object.assign(gw, {
    logs,
    token,
    fetch: authed,
    health: async () => (await authed(`${gw.url}/api/health`)).json(),
  }) as TestGateway;
}

/** The lab of `npm start` on free ports (`simulatedLabOnFreePorts`), started; `adjust` may change its config first. */
export async function demoLabOnFreePorts(opts: StartOptions, adjust: (cfg: LoadedConfig['config']) => void = () => {}): Promise<RunningLab> {
  const loaded = await simulatedLabOnFreePorts('demo');
  adjust(loaded.config);
  return startLab(loaded, opts);
}

const cli = join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js');
const cliChildren: ChildProcessWithoutNullStreams[] = [];

export type CliProcess = ChildProcessWithoutNullStreams & { lines: string[] };

/** `ovn-gateway <args>` in a process of its own, its stdout and stderr kept line by line. */
export function runCli(args: string[]): CliProcess {
  const child = spawn(process.execPath, [cli, ...args], { stdio: 'pipe' });
  cliChildren.push(child);
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
  createInterface({ input: child.stderr }).on('line', (l) => lines.push(l));
  return Object.assign(child, { lines });
}

/** SIGKILLs every process runCli started that still runs, so a failed test leaves none behind (for afterEach). */
export function killCliChildren(): void {
  for (const c of cliChildren.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
}

/**
 * `ovn-gateway run` on one config file, started and killed again and again like a gateway that
 * crashes; its API is reached with an admin token made when this is created, before any start.
 */
export class GatewayProcess {
  /** The last 20,000 characters the gateway processes wrote, for a failure's message. */
  output = '';
  private child: CliProcess | null = null;
  private readonly auth: RequestInit;

  constructor(
    private readonly config: string,
    dataDir: string,
    private readonly httpPort: number,
    private readonly args: string[] = [],
  ) {
    this.auth = adminHeaders(dataDir);
  }

  /** fetch on the gateway's HTTP port with the admin token. */
  api(path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`http://127.0.0.1:${this.httpPort}${path}`, { ...init, headers: { ...(this.auth.headers as Record<string, string>), ...(init.headers as Record<string, string> | undefined) } });
  }

  /** Starts a gateway process and waits until every device of the config is online. */
  async up(): Promise<void> {
    const child = runCli(['run', ...this.args, '--config', this.config, '--http-port', String(this.httpPort)]);
    this.child = child;
    const keep = (d: Buffer) => (this.output = (this.output + d.toString()).slice(-20_000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}:\n${this.output}`);
        const h = (await (await this.api('/api/health')).json()) as { devices: { state: string }[] };
        return h.devices.length > 0 && h.devices.every((d) => d.state === 'online');
      },
      30_000,
      'every device online at the gateway',
    );
  }

  /** Sends `signal` to the running gateway, if any, and resolves with its exit code once it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = once(child, 'exit');
    child.kill(signal);
    return ((await exited) as [number | null])[0];
  }
}

/** The lab of `npm start` on free ports (as `demoLabOnFreePorts`), logging nothing below warnings and those to nowhere. */
export function labOnFreePorts(): Promise<RunningLab> {
  const quiet = new Writable({ write: (_chunk, _enc, done) => done() });
  return demoLabOnFreePorts({ logger: createLogger({ level: 'warn', format: 'json' }, quiet) });
}
