/**
 * The subset of OctoPrint's REST API that slicers speak (PrusaSlicer, OrcaSlicer, SuperSlicer,
 * Cura's OctoPrint connection), one printer tool per base URL: `/octoprint/<tool>/`. A slicer's
 * "physical printer" is then one tool of the lab. The key is one of the gateway's API tokens,
 * as `X-Api-Key` (what the slicers send), `Authorization: Bearer` or `?apikey=`.
 *
 * What differs from OctoPrint, on purpose: an upload with `print=true` does not print at once;
 * it is queued until its owner's session at the tool releases it (print-jobs/queue.ts), and
 * every reply about a file or a job carries the gateway's quote under `ovn`.
 * Wire format: https://docs.octoprint.org/en/master/api/ (version, files, job, printer).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Printer } from '../devices/printer/driver.js';
import { FileRefusal } from '../print-jobs/files.js';
import { staffOwner, type JobOwner, type PrintJob, type PrintQueue } from '../print-jobs/queue.js';
import { VERSION } from '../version.js';
import { actor, authenticate, type FailureLimit } from './auth.js';
import { HttpError } from './errors.js';
import { MultipartError, readMultipart } from './multipart.js';
import type { TokenCheck } from './tokens.js';

/** The OctoPrint version the slicers are told: PrusaSlicer and OrcaSlicer want `text` to start with "OctoPrint"; Cura wants ≥ 1.1. */
export const OCTOPRINT_VERSION = '1.10.0';
export const OCTOPRINT_API = '0.1';

const TRUE = new Set(['true', '1', 'yes', 'on']);
const flag = (v: string | undefined) => v !== undefined && TRUE.has(v.trim().toLowerCase());

const STATE_TEXT: Record<string, string> = { offline: 'Offline', connecting: 'Connecting', idle: 'Operational', heating: 'Operational', printing: 'Printing', paused: 'Paused', error: 'Error' };

const toolParams = z.object({ tool: z.string().min(1).max(64) });
const fileParams = toolParams.extend({ '*': z.string().min(1).max(1000) });

export interface OctoPrintOptions {
  queue: PrintQueue;
  tokens: TokenCheck;
  failures: FailureLimit;
}

/** Who is asking: an affiliate (their own jobs), or a maintainer or admin (every job, staff jobs of their own); custodians only read. */
function ownerOf(req: FastifyRequest): JobOwner & { role: string } {
  const a = req.auth!;
  if (a.role === 'affiliate') return { id: a.affiliateId!, staff: false, role: a.role };
  return { ...staffOwner(a), role: a.role };
}

function requireSender(req: FastifyRequest): JobOwner {
  const o = ownerOf(req);
  if (o.role === 'custodian') throw new HttpError(403, 'forbidden', 'a custodian token may look at the queue but not send or change print jobs; use an affiliate token (your own jobs) or a maintainer token');
  return o;
}

/** May this caller change this job: its owner, a maintainer or an admin. */
function requireOwnerOrStaff(req: FastifyRequest, job: PrintJob): void {
  const o = ownerOf(req);
  if (o.role === 'maintainer' || o.role === 'admin') return;
  if (o.role === 'affiliate' && !job.staff && job.owner === o.id) return;
  throw new HttpError(403, 'forbidden', `${job.file} is ${job.owner}'s job: only they, a maintainer or an admin may change it`);
}


export const octoPrintRoutes: FastifyPluginAsync<OctoPrintOptions> = async (app, { queue, tokens, failures }) => {
  const printerAt = (tool: string) => {
    try {
      return queue.toolWithPrinter(tool);
    } catch (err) {
      if (err instanceof FileRefusal) throw new HttpError(404, 'unknown-tool', err.message);
      throw err;
    }
  };
  /** The file each caller selected last at each tool (OctoPrint's "selected file"), by tool and owner. */
  const selected = new Map<string, string>();
  // the body of an upload is read by busboy as it arrives, never whole
  app.addContentTypeParser('multipart/form-data', (_req, _payload, done) => done(null));
  app.addHook('onRequest', async (req) => {
    req.auth = authenticate(tokens, failures, req, true);
  });
  // a slicer pointed at a tool that is not a printer fails its connection test, with the reason
  app.addHook('preHandler', async (req) => void printerAt((req.params as { tool: string }).tool));

  const base = (req: FastifyRequest) => `/octoprint/${encodeURIComponent((req.params as { tool: string }).tool)}`;
  /** The jobs this caller sees: an affiliate their own, the others all. */
  const visible = (req: FastifyRequest) => (req.auth!.role === 'affiliate' ? req.auth!.affiliateId : null);
  const fileOf = (req: FastifyRequest, tool: string, path: string): PrintJob => {
    const job = queue.byName(tool, path.split('/').pop()!);
    const own = visible(req);
    if (!job || (own !== null && (job.staff || job.owner !== own))) throw new HttpError(404, 'not-found', `no file "${path}" of yours at tool "${tool}"`);
    return job;
  };

  /** OctoPrint's file entry, with the gateway's job and quote under `ovn`. */
  const entry = (req: FastifyRequest, j: PrintJob) => {
    const url = `${req.protocol}://${req.host}${base(req)}/api/files/local/${encodeURIComponent(j.file)}`;
    return {
      name: j.file,
      display: j.file,
      path: j.file,
      type: 'machinecode',
      typePath: ['machinecode', 'gcode'],
      origin: 'local',
      size: j.bytes,
      date: Math.floor(Date.parse(j.createdAt) / 1000),
      refs: { resource: url },
      gcodeAnalysis: { estimatedPrintTime: j.quote.durationS, filament: { tool0: { length: j.quote.filamentMm, volume: null } } },
      ovn: ovnOf(j),
    };
  };

  app.get('/api/version', { schema: { hide: true } }, async () => ({ api: OCTOPRINT_API, server: OCTOPRINT_VERSION, text: `OctoPrint ${OCTOPRINT_VERSION} (compatible: ovn-gateway ${VERSION})` }));
  app.get('/api/server', { schema: { hide: true } }, async () => ({ version: OCTOPRINT_VERSION, safemode: null }));

  // Cura's OctoPrint plugin: its key check (settings), its user (login) and the printer's name (printer profiles)
  app.get('/api/settings', { schema: { hide: true } }, async () => ({ api: { enabled: true }, feature: { sdSupport: false }, webcam: { webcamEnabled: false, streamUrl: '' }, plugins: {} }));
  app.post('/api/login', { schema: { hide: true } }, async (req) => ({ name: ownerOf(req).id, active: true, admin: req.auth!.role === 'admin' }));
  app.get('/api/printerprofiles', { schema: { hide: true } }, async (req) => {
    const { tool } = toolParams.parse(req.params);
    const { tool: t, printer } = printerAt(tool);
    return { profiles: { [tool]: { id: tool, name: t.cfg.name ?? tool, model: printer.id, current: true, default: true } } };
  });

  app.post('/api/files/:location', { schema: { hide: true } }, async (req, reply) => {
    const { tool, location } = req.params as { tool: string; location: string };
    if (location !== 'local') throw new HttpError(404, 'not-found', `files go to "local" (the gateway's storage); the printer's SD card ("${location}") is not reachable from here`);
    printerAt(tool);
    const owner = requireSender(req);
    const why = queue.refusalFor(tool, owner);
    if (why) throw new HttpError(403, 'not-qualified', why);
    if (!req.headers['content-type']?.startsWith('multipart/form-data')) throw new HttpError(415, 'unsupported-media-type', 'send the file as multipart/form-data with a "file" part, as a slicer does');
    const declared = Number(req.headers['content-length']);
    let job = null as PrintJob | null;
    let fields: Record<string, string>;
    try {
      ({ fields } = await readMultipart(req.raw, req.headers['content-type'], async (part, stream) => {
        if (part.field !== 'file') throw new HttpError(400, 'bad-request', `the file came as part "${part.field}": send it as the part named "file"`);
        job = await queue.upload(tool, owner, part.filename, stream, { declaredBytes: Number.isFinite(declared) ? declared : null });
      }));
    } catch (err) {
      if (err instanceof MultipartError) throw new HttpError(400, 'bad-request', `the upload is not a well-formed multipart form: ${err.message}`);
      throw err;
    }
    if (!job) throw new HttpError(400, 'bad-request', 'no file in the upload: send it as the multipart part named "file"');
    const print = flag(fields.print);
    if (print || flag(fields.select)) selected.set(`${tool}\u0000${owner.id}`, job.id);
    if (print) job = queue.enqueue(job.id, actor(req));
    const e = entry(req, job);
    return reply
      .code(201)
      .header('location', e.refs.resource)
      .send({ files: { local: { name: job.file, origin: 'local', path: job.file, refs: e.refs } }, done: true, effectiveSelect: print || flag(fields.select), effectivePrint: print, ovn: ovnOf(job) });
  });

  const list = async (req: FastifyRequest) => {
    const { tool } = req.params as { tool: string };
    printerAt(tool);
    return { files: queue.list(tool, visible(req)).map((j) => entry(req, j)), free: null, total: null };
  };
  app.get('/api/files', { schema: { hide: true } }, list);
  app.get('/api/files/local', { schema: { hide: true } }, list);
  app.get('/api/files/local/*', { schema: { hide: true } }, async (req) => {
    const p = fileParams.parse(req.params);
    printerAt(p.tool);
    return entry(req, fileOf(req, p.tool, p['*']));
  });
  app.delete('/api/files/local/*', { schema: { hide: true } }, async (req, reply) => {
    const p = fileParams.parse(req.params);
    printerAt(p.tool);
    const job = fileOf(req, p.tool, p['*']);
    requireOwnerOrStaff(req, job);
    queue.remove(job.id, actor(req));
    return reply.code(204).send();
  });
  // OctoPrint's file commands: select (and print)
  app.post('/api/files/local/*', { schema: { hide: true } }, async (req, reply) => {
    const p = fileParams.parse(req.params);
    printerAt(p.tool);
    const body = z.object({ command: z.string(), print: z.boolean().optional() }).parse(req.body ?? {});
    if (body.command !== 'select') throw new HttpError(400, 'bad-request', `file command "${body.command}" is not supported here (only "select", with "print")`);
    const owner = requireSender(req);
    const job = fileOf(req, p.tool, p['*']);
    requireOwnerOrStaff(req, job);
    selected.set(`${p.tool}\u0000${owner.id}`, job.id);
    if (body.print) queue.enqueue(job.id, actor(req));
    return reply.code(204).send();
  });

  app.get('/api/job', { schema: { hide: true } }, async (req) => {
    const { tool } = toolParams.parse(req.params);
    const { printer } = printerAt(tool);
    const own = visible(req);
    const current = printer.currentJob;
    const mine = queue.latest(tool, own) ?? (selected.get(`${tool}\u0000${ownerOf(req).id}`) ? queue.get(selected.get(`${tool}\u0000${ownerOf(req).id}`)!) : null);
    const shown = current && mine?.printerJobId === current.id ? current : null;
    return {
      job: {
        file: mine ? { name: mine.file, origin: 'local', size: mine.bytes, date: Math.floor(Date.parse(mine.createdAt) / 1000), path: mine.file, display: mine.file } : { name: null, origin: null, size: null, date: null, path: null },
        estimatedPrintTime: mine?.quote.durationS ?? null,
        filament: mine ? { tool0: { length: mine.quote.filamentMm, volume: null } } : null,
        user: mine?.owner ?? null,
      },
      progress: {
        completion: shown ? Math.round(shown.progress * 10_000) / 100 : null,
        filepos: null,
        printTime: shown ? Math.round((Date.now() - Date.parse(shown.startedAt)) / 1000) : null,
        printTimeLeft: null,
      },
      state: STATE_TEXT[printer.state] ?? printer.state,
      ovn: { job: mine && ovnOf(mine), queue: queue.list(tool, own).filter((j) => j.state === 'queued').map(ovnOf), printing: current && { file: current.file, progress: current.progress, filamentG: current.filamentG, mine: shown !== null } },
    };
  });

  app.post('/api/job', { schema: { hide: true } }, async (req, reply) => {
    const { tool } = toolParams.parse(req.params);
    const { printer } = printerAt(tool);
    const body = z.object({ command: z.enum(['start', 'cancel', 'pause', 'restart']), action: z.enum(['pause', 'resume', 'toggle']).optional() }).parse(req.body ?? {});
    const owner = requireSender(req);
    const staff = owner.staff;
    {
      if (body.command === 'start' || body.command === 'restart') {
        const id = selected.get(`${tool}\u0000${owner.id}`);
        if (!id) throw new HttpError(409, 'conflict', 'no file selected: upload one with select=true, or select one (POST /api/files/local/<name> {"command":"select"})');
        queue.enqueue(id, actor(req));
        return reply.code(204).send();
      }
      const running = queue.latest(tool, null);
      const printing = running?.state === 'printing' && printer.currentJob?.id === running.printerJobId ? running : null;
      if (body.command === 'cancel') {
        if (printing && (staff || (!printing.staff && printing.owner === owner.id))) {
          printer.cancel();
          return reply.code(204).send();
        }
        const waiting = queue.list(tool, staff ? null : owner.id).filter((j) => j.state === 'queued');
        const own = waiting.find((j) => j.owner === owner.id) ?? (staff ? waiting[0] : undefined);
        if (!own) throw new HttpError(409, 'conflict', staff ? `nothing is printing or queued at tool "${tool}"` : `no job of yours is printing or queued at tool "${tool}"`);
        queue.remove(own.id, actor(req));
        return reply.code(204).send();
      }
      // pause
      if (!printing) throw new HttpError(409, 'conflict', `no job sent through the gateway is printing at tool "${tool}"`);
      requireOwnerOrStaff(req, printing);
      const job = printer.currentJob!;
      const action = body.action ?? 'toggle';
      if (action === 'pause' || (action === 'toggle' && job.state === 'printing')) printer.pause();
      else printer.resume();
      return reply.code(204).send();
    }
  });

  app.get('/api/printer', { schema: { hide: true } }, async (req) => {
    const { tool } = toolParams.parse(req.params);
    const { printer } = printerAt(tool);
    return printerStatus(printer);
  });
};

function printerStatus(printer: Printer) {
  const t = printer.temperatures;
  const heater = (h: { actual: number; target: number } | undefined) => h && { actual: h.actual, target: h.target, offset: 0 };
  const temperature: Record<string, unknown> = {};
  const tools = t?.tools.length ? t.tools : t?.hotend ? [t.hotend] : [];
  tools.forEach((h, i) => (temperature[`tool${i}`] = heater(h)));
  if (t?.bed) temperature.bed = heater(t.bed);
  const s = printer.state;
  const operational = s !== 'offline' && s !== 'connecting' && s !== 'error';
  return {
    temperature,
    sd: { ready: false },
    state: {
      text: STATE_TEXT[s] ?? s,
      flags: { operational, printing: s === 'printing', paused: s === 'paused', pausing: false, cancelling: false, sdReady: false, error: s === 'error', ready: operational && printer.currentJob === null, closedOrError: !operational },
    },
  };
}

/** The gateway's own view of a job: state, owner, queue expiry, quote, estimate vs metered. */
function ovnOf(j: PrintJob) {
  return {
    id: j.id,
    file: j.file,
    owner: j.owner,
    state: j.state,
    createdAt: j.createdAt,
    expiresAt: j.expiresAt,
    startedAt: j.startedAt,
    endedAt: j.endedAt,
    sessionId: j.sessionId,
    quote: j.quote,
    estimateG: j.quote.filamentG,
    meteredG: j.meteredG,
    confirmedAt: j.confirmedAt,
    releasedBy: j.staff
      ? 'a session of its own when none is open'
      : j.quote.confirm?.needed && !j.confirmedAt
        ? `${j.owner}'s confirmation of the quote (POST /api/print-jobs/${j.id}/confirm), then their badge at the printer`
        : `${j.owner}'s badge at the printer`,
  };
}
