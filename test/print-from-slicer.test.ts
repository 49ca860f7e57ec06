/**
 * Printing from a slicer, end to end: PrusaSlicer's own requests (its version check and its
 * upload, byte for byte as libcurl sends them) replayed as raw HTTP against the gateway's
 * OctoPrint-compatible API; the quote; the badge at a simulated metering node that releases the
 * job; the simulated Marlin printer that prints it; the session that meters it and the charge.
 * The node and the printer each on a pseudo-terminal, through the real serial stack.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Printer } from '../gateway/src/devices/printer/driver.js';
import { createToken } from '../gateway/src/http/tokens.js';
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { PrinterSim } from '../simulators/src/printer/printer-sim.js';
import { servePty, type SimTransport } from '../simulators/src/transports.js';
import { SIM_CLOCK_RATE, skipWithoutSocat, startTestGateway, tempDir, waitFor, type TestGateway } from './helpers.js';

const ADA = '04A1B2C3';
const BO = '0411223344';
const CUBE = readFileSync(join(import.meta.dirname, 'fixtures', 'slicers', 'cube-prusaslicer-2.5.gcode'));
/** libcurl's boundary: 24 dashes and 16 hex digits. */
const BOUNDARY = '------------------------9a3b5c7d1e2f4a6b';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** What came before the final response: "HTTP/1.1 100 Continue" when the client asked for it. */
  interim: string[];
}

/** Sends bytes as they are and reads one response; with `Expect: 100-continue` the body waits for the 100, else it follows the head at once. */
function raw(url: string, head: string, body: Buffer | null = null): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let got = Buffer.alloc(0);
    const interim: string[] = [];
    const waits = /\r\nExpect: 100-continue\r\n/i.test(head);
    let sentBody = body === null || !waits;
    socket.on('error', reject);
    socket.on('connect', () => socket.write(waits || body === null ? head : Buffer.concat([Buffer.from(head), body])));
    socket.on('data', (d) => {
      got = Buffer.concat([got, d]);
      for (;;) {
        const end = got.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = got.toString('latin1', 0, end).split('\r\n');
        const status = Number(lines[0]!.split(' ')[1]);
        if (status === 100) {
          interim.push(lines[0]!);
          got = got.subarray(end + 4);
          if (!sentBody) {
            sentBody = true;
            socket.write(body!);
          }
          continue;
        }
        const headers = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        const length = Number(headers['content-length'] ?? 0);
        if (got.length < end + 4 + length) return;
        socket.end();
        return resolve({ status, headers, body: got.toString('utf8', end + 4, end + 4 + length), interim });
      }
    });
  });
}

/** PrusaSlicer 2.5's connection test (OctoPrint::test): GET api/version with its key. */
const versionCheck = (url: string, tool: string, key: string) =>
  raw(url, `GET /octoprint/${tool}/api/version HTTP/1.1\r\nHost: ${new URL(url).host}\r\nUser-Agent: PrusaSlicer/2.5.0\r\nAccept: */*\r\nX-Api-Key: ${key}\r\n\r\n`);

/** PrusaSlicer 2.5's upload (OctoPrint::upload_inner_with_host): form fields print, path, then the file, through libcurl's form API. */
function prusaSlicerUpload(url: string, tool: string, key: string, name: string, file: Buffer, print: boolean): Promise<RawResponse> {
  const part = (headers: string) => Buffer.from(`--${BOUNDARY}\r\n${headers}\r\n\r\n`);
  const body = Buffer.concat([
    part('Content-Disposition: form-data; name="print"'),
    Buffer.from(`${print}\r\n`),
    part('Content-Disposition: form-data; name="path"'),
    Buffer.from('\r\n'),
    part(`Content-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream`),
    file,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
  const head =
    `POST /octoprint/${tool}/api/files/local HTTP/1.1\r\nHost: ${new URL(url).host}\r\nUser-Agent: PrusaSlicer/2.5.0\r\nAccept: */*\r\nX-Api-Key: ${key}\r\n` +
    `Content-Length: ${body.length}\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nExpect: 100-continue\r\n\r\n`;
  return raw(url, head, body);
}

describe.skipIf(skipWithoutSocat)('printing from a slicer through the OctoPrint-compatible API', () => {
  const transports: SimTransport[] = [];
  const node = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 50, powerW: 150, timeScale: 60 });
  const printerSim = new PrinterSim({ timeScale: 400, keepaliveMs: 100 });
  let gw: TestGateway;
  const keys: Record<string, string> = {};
  const printer = () => gw.devices.get('mk3s') as Printer;
  const lastEventId = () => gw.journal.db.prepare('SELECT COALESCE(MAX(id), 0) FROM events').pluck().get() as number;
  const data = (kind: string, after = 0) => gw.journal.events({ kind, deviceId: 'printer', afterId: after, limit: 1_000_000 }).map((e) => e.data);
  const call = async (method: string, path: string, key: string, body?: unknown) => {
    const res = await gw.app.inject({ method: method as 'GET', url: path, headers: { 'x-api-key': key }, ...(body !== undefined && { payload: body as object }) });
    return { status: res.statusCode, body: res.body ? (res.json() as Record<string, any>) : null }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  async function badge(uid: string, kind: 'session.started' | 'session.ended'): Promise<Record<string, unknown>> {
    const mark = lastEventId();
    node.badge(uid);
    return waitFor(() => data(kind, mark)[0], 10_000, kind);
  }

  beforeAll(async () => {
    const dir = tempDir('slicer');
    transports.push(await servePty(node, join(dir, 'ttyNODE')), await servePty(printerSim, join(dir, 'ttyPRINTER')));
    const reconnect = { initialMs: 50, maxMs: 300 };
    gw = await startTestGateway({
      devices: [
        { id: 'n1', kind: 'metering-node', nodeId: 'n1', maxClockRate: SIM_CLOCK_RATE, serial: { path: transports[0]!.address, reconnect } },
        { id: 'mk3s', kind: 'printer', serial: { path: transports[1]!.address, reconnect }, pollIntervalS: 1, timeouts: { communicationMs: 400, maxConsecutive: 3, startMs: 300 } },
      ],
      tools: [{ id: 'printer', node: 'n1', printer: 'mk3s', idleTimeoutMin: 60, warnBeforeOffS: 0 }],
      useTypes: ['commercial', 'community', 'maintenance'],
      // room for three cubes in a file, and for a few files each
      printJobs: { maxFileMb: 0.3, quotaMb: 0.5 },
      billing: {
        currency: 'EUR',
        materials: { PLA: { pricePerGram: '0.05' } },
        tools: {
          printer: {
            tariffs: { commercial: { hourlyRate: '6.00', incrementMin: 15 }, community: { hourlyRate: '6.00', incrementMin: 15, confirmAbove: '1.00' }, maintenance: { hourlyRate: '6.00', cash: false } },
          },
        },
      },
      affiliates: [
        { id: 'ada', name: 'Ada', badges: [ADA], qualifications: [{ tool: 'printer' }] },
        { id: 'bo', name: 'Bo', badges: [BO], qualifications: [{ tool: 'printer' }], useType: 'community' },
        { id: 'cy', name: 'Cy', badges: ['C0FFEE01'] },
      ],
    });
    keys.ada = createToken(gw.journal, { role: 'affiliate', affiliateId: 'ada', name: 'ada-laptop' }).token;
    keys.bo = createToken(gw.journal, { role: 'affiliate', affiliateId: 'bo' }).token;
    keys.cy = createToken(gw.journal, { role: 'affiliate', affiliateId: 'cy' }).token;
    keys.custodian = createToken(gw.journal, { role: 'custodian', name: 'carla' }).token;
    keys.maintainer = createToken(gw.journal, { role: 'maintainer', name: 'mo' }).token;
    await waitFor(async () => (await gw.health()).devices.every((d) => d.state === 'online'), 15_000, 'devices online');
    await waitFor(() => printer().state === 'idle', 10_000, 'printer idle');
  });

  afterAll(async () => {
    await gw?.stop();
    for (const t of transports) await t.close();
  });

  it("passes PrusaSlicer's connection test with an API token as its key, and refuses a wrong key", async () => {
    const ok = await versionCheck(gw.url, 'printer', keys.ada!);
    expect(ok.status).toBe(200);
    const version = JSON.parse(ok.body) as Record<string, string>;
    // what PrusaSlicer checks: an "api" field, and a "text" that starts with "OctoPrint"
    expect(version.api).toBeDefined();
    expect(version.text!.startsWith('OctoPrint')).toBe(true);
    expect((await versionCheck(gw.url, 'printer', 'ovn_wrong')).status).toBe(401);
    expect(JSON.parse((await versionCheck(gw.url, 'printer', '')).body)).toMatchObject({ error: 'bad-token', message: expect.stringContaining('API Key') });
    // the other ways to give it, and an unknown tool
    expect((await gw.app.inject({ url: `/octoprint/printer/api/server?apikey=${keys.ada}` })).json()).toMatchObject({ version: expect.any(String) });
    expect((await gw.app.inject({ url: '/octoprint/printer/api/version', headers: { authorization: `Bearer ${keys.ada}` } })).statusCode).toBe(200);
    expect(await call('GET', '/octoprint/lathe/api/version', keys.ada!)).toMatchObject({ status: 404, body: { message: expect.stringContaining('no tool "lathe"') } });
  });

  it('refuses what the gateway cannot meter or may not take, saying why', async () => {
    const cy = await prusaSlicerUpload(gw.url, 'printer', keys.cy!, 'box.gcode', CUBE, true);
    expect(cy.status).toBe(403);
    expect(JSON.parse(cy.body).message).toBe('Cy is not qualified on tool "printer": a custodian can add the qualification once the training is done');
    const binary = await prusaSlicerUpload(gw.url, 'printer', keys.ada!, 'box.bgcode', Buffer.from('GCDE\u0001\u0000'), true);
    expect(binary.status).toBe(415);
    expect(JSON.parse(binary.body).message).toMatch(/binary G-code.*plain \.gcode/);
    const custodian = await prusaSlicerUpload(gw.url, 'printer', keys.custodian!, 'box.gcode', CUBE, false);
    expect(custodian.status).toBe(403);
    expect((await call('GET', '/octoprint/printer/api/files', keys.ada!)).body).toMatchObject({ files: [] });
  });

  it('quotes the upload, holds it until Ada badges in, prints it in her session and charges her', async () => {
    const up = await prusaSlicerUpload(gw.url, 'printer', keys.ada!, 'cube.gcode', CUBE, true);
    expect(up.interim).toEqual(['HTTP/1.1 100 Continue']);
    expect(up.status, up.body).toBe(201);
    const reply = JSON.parse(up.body);
    expect(reply).toMatchObject({ done: true, effectivePrint: true, files: { local: { name: 'cube.gcode', origin: 'local' } } });
    expect(up.headers.location).toMatch(/\/octoprint\/printer\/api\/files\/local\/cube\.gcode$/);
    const quote = reply.ovn.quote;
    expect(reply.ovn).toMatchObject({ state: 'queued', owner: 'ada' });
    expect(quote).toMatchObject({ useType: 'commercial', material: 'PLA', durationS: 511, slicer: { slicer: 'PrusaSlicer 2.5.0', filamentG: 1.27, filamentMm: 426.99 }, notes: [] });
    expect(Math.abs(quote.filamentG - 1.27)).toBeLessThan(0.01);
    // 8 min 31 s in 15-minute increments at 6.00 an hour, and the grams at 0.05
    const material = (Math.round(quote.filamentG * 1000) * 5) / 100_000;
    expect(quote.price).toMatchObject({ currency: 'EUR', cash: true, billedMin: 15, usage: '1.50', material: material.toFixed(2), total: (1.5 + Number(material.toFixed(2))).toFixed(2) });

    // the slicer's and the dashboard's views of it
    const job = await call('GET', '/octoprint/printer/api/job', keys.ada!);
    expect(job.body).toMatchObject({ state: 'Operational', job: { file: { name: 'cube.gcode' }, estimatedPrintTime: 511, user: 'ada' }, ovn: { job: { state: 'queued' }, queue: [{ file: 'cube.gcode' }] } });
    expect((await call('GET', '/octoprint/printer/api/files/local/cube.gcode', keys.ada!)).body).toMatchObject({ name: 'cube.gcode', size: CUBE.length, gcodeAnalysis: { estimatedPrintTime: 511 } });
    // Bo sees neither the file nor the job
    expect((await call('GET', '/octoprint/printer/api/files/local/cube.gcode', keys.bo!)).status).toBe(404);
    expect((await call('GET', '/octoprint/printer/api/files', keys.bo!)).body!.files).toEqual([]);

    // Bo's session does not release Ada's job
    await badge(BO, 'session.started');
    await new Promise((r) => setTimeout(r, 1500)); // the queue looks every second
    expect(printer().currentJob).toBeNull();
    await badge(BO, 'session.ended');

    // Ada's badge does
    const mark = lastEventId();
    const truthBefore = printerSim.truth().totalExtrudedG;
    const session = await badge(ADA, 'session.started');
    const started = await waitFor(() => data('print-job.started', mark)[0], 10_000, 'the job started');
    expect(started).toMatchObject({ owner: 'ada', file: 'cube.gcode', sessionId: session.sessionId });
    const ended = await waitFor(() => data('print-job.ended', mark)[0], 60_000, 'the job ended');
    expect(ended).toMatchObject({ outcome: 'finished', owner: 'ada', sessionId: session.sessionId, estimateG: quote.filamentG });
    const truthG = printerSim.truth().totalExtrudedG - truthBefore;
    expect(Math.abs((ended.meteredG as number) - truthG) / truthG).toBeLessThan(0.001);

    // estimate vs actual, kept with the job
    const after = await call('GET', '/octoprint/printer/api/job', keys.ada!);
    expect(after.body).toMatchObject({ ovn: { job: { state: 'finished', estimateG: quote.filamentG, meteredG: ended.meteredG } } });

    // her session metered it, and its end charges her for it
    const end = await badge(ADA, 'session.ended');
    expect(end).toMatchObject({ sessionId: session.sessionId, affiliateId: 'ada' });
    expect(Math.abs((end.filamentG as number) - (ended.meteredG as number))).toBeLessThan(0.001);
    const charge = await waitFor(() => data('billing.charge', mark).find((c) => c.sessionId === session.sessionId), 5000, 'the charge');
    expect(charge).toMatchObject({ affiliateId: 'ada', useType: 'commercial', price: { cash: true } });
    expect((charge.price as { material: number }).material).toBe(Math.round((Math.round((end.filamentG as number) * 1000) * 5) / 1000));
  });

  it("a maintainer's job with no session open runs under a maintenance session of their own", async () => {
    const mark = lastEventId();
    const up = await prusaSlicerUpload(gw.url, 'printer', keys.maintainer!, 'calibration.gcode', CUBE, true);
    expect(up.status, up.body).toBe(201);
    expect(JSON.parse(up.body).ovn.quote).toMatchObject({ useType: 'maintenance', price: { cash: false } });
    const session = await waitFor(() => data('session.started', mark)[0], 10_000, 'a session for the job');
    expect(session).toMatchObject({ affiliateId: 'maintainer:mo', useType: 'maintenance' });
    expect(data('session.opened-for-job', mark)[0]).toMatchObject({ affiliateId: 'maintainer:mo', useType: 'maintenance', by: 'maintainer:mo' });
    const ended = await waitFor(() => data('print-job.ended', mark)[0], 60_000, 'the job ended');
    expect(ended).toMatchObject({ outcome: 'finished', owner: 'maintainer:mo', sessionId: session.sessionId });
    const stop = await gw.fetch(`${gw.url}/api/tools/printer/session/stop`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(stop.status).toBe(200);
    const closed = await waitFor(() => data('session.ended', mark)[0], 10_000, 'the session ended');
    expect(closed).toMatchObject({ affiliateId: 'maintainer:mo', useType: 'maintenance' });
    expect((closed.filamentG as number) - (ended.meteredG as number)).toBeCloseTo(0, 3);
  });

  it('a queued job is removed by its owner, not by another affiliate', async () => {
    const up = await prusaSlicerUpload(gw.url, 'printer', keys.ada!, 'later.gcode', CUBE, true);
    expect(up.status).toBe(201);
    expect((await call('DELETE', '/octoprint/printer/api/files/local/later.gcode', keys.bo!)).status).toBe(404);
    expect((await call('POST', '/octoprint/printer/api/job', keys.bo!, { command: 'cancel' })).status).toBe(409);
    expect((await call('POST', '/octoprint/printer/api/job', keys.ada!, { command: 'cancel' })).status).toBe(204);
    expect(data('print-job.removed').at(-1)).toMatchObject({ file: 'later.gcode', was: 'queued', by: 'ada-laptop' });
    expect((await call('GET', '/octoprint/printer/api/files', keys.ada!)).body!.files.map((f: { name: string }) => f.name)).toEqual(['cube.gcode']);
  });

  it("takes Cura's OctoPrint plugin: its key check, its user, the printer's name, and its upload with select and print", async () => {
    const host = new URL(gw.url).host;
    const get = (path: string) => raw(gw.url, `GET /octoprint/printer/api/${path} HTTP/1.1\r\nHost: ${host}\r\nX-Api-Key: ${keys.bo}\r\nUser-Agent: Cura/5.0.0\r\n\r\n`);
    // the plugin's discovery takes a 200 from api/settings as "API key accepted"
    expect(await get('settings')).toMatchObject({ status: 200 });
    expect(JSON.parse((await get('settings')).body)).toMatchObject({ feature: { sdSupport: false }, webcam: { streamUrl: '' } });
    expect(JSON.parse((await get('printerprofiles')).body)).toMatchObject({ profiles: { printer: { current: true, name: 'printer' } } });
    expect((await call('POST', '/octoprint/printer/api/login', keys.bo!, { passive: true })).body).toMatchObject({ name: 'bo' });
    // QHttpMultiPart: a quoted boundary; parts path, file, select, print, each with its Content-Type
    const b = 'boundary_.oOo._MTg4NjU0NzA2OQ==MjA0ODk3NDY0';
    const part = (disposition: string, type: string, data: Buffer) => Buffer.concat([Buffer.from(`--${b}\r\nContent-Type: ${type}\r\nContent-Disposition: form-data; ${disposition}\r\n\r\n`), data, Buffer.from('\r\n')]);
    const body = Buffer.concat([
      part('name="path"', 'text/plain', Buffer.alloc(0)),
      part('name="file"; filename="cube_cura.gcode"', 'application/octet-stream', CUBE),
      part('name="select"', 'text/plain', Buffer.from('true')),
      part('name="print"', 'text/plain', Buffer.from('true')),
      Buffer.from(`--${b}--\r\n`),
    ]);
    const head = `POST /octoprint/printer/api/files/local HTTP/1.1\r\nHost: ${host}\r\nX-Api-Key: ${keys.bo}\r\nUser-Agent: Cura/5.0.0\r\nContent-Type: multipart/form-data; boundary="${b}"\r\nMIME-Version: 1.0\r\nContent-Length: ${body.length}\r\n\r\n`;
    const up = await raw(gw.url, head, body);
    expect(up.status, up.body).toBe(201);
    expect(JSON.parse(up.body)).toMatchObject({ effectiveSelect: true, effectivePrint: true, ovn: { owner: 'bo', state: 'queued', file: 'cube_cura.gcode', quote: { durationS: 511 } } });
    expect((await call('DELETE', '/octoprint/printer/api/files/local/cube_cura.gcode', keys.bo!)).status).toBe(204);
  });

  it('a queued job expires when its owner does not badge in within printJobs.queuedExpiryH', async () => {
    const up = await prusaSlicerUpload(gw.url, 'printer', keys.bo!, 'forgotten.gcode', CUBE, true);
    const job = JSON.parse(up.body).ovn;
    // 24 h from when it was queued (a moment after its upload)
    expect(Date.parse(job.expiresAt) - Date.parse(job.createdAt)).toBeGreaterThanOrEqual(24 * 3_600_000);
    expect(Date.parse(job.expiresAt) - Date.parse(job.createdAt)).toBeLessThan(24 * 3_600_000 + 5000);
    // a day later, as far as the queue can tell
    gw.journal.db.prepare('UPDATE print_jobs SET expires_at = ? WHERE id = ?').run(new Date(Date.now() - 1000).toISOString(), job.id);
    expect(await waitFor(() => data('print-job.expired').find((e) => e.jobId === job.id), 5000, 'the job expired')).toMatchObject({ owner: 'bo', file: 'forgotten.gcode' });
    expect((await call('GET', '/octoprint/printer/api/files/local/forgotten.gcode', keys.bo!)).body).toMatchObject({ ovn: { state: 'expired' } });
  });

  it("the maintainers' print-host endpoint queues a job at a tool with no session, to run under a session of the sender's own", async () => {
    const mark = lastEventId();
    const res = await gw.fetch(`${gw.url}/api/devices/mk3s/jobs?name=plain.gcode`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: CUBE.toString('latin1') });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ file: 'plain.gcode', state: 'queued', printJob: { owner: 'admin:test', staff: true, quote: { useType: 'maintenance' } } });
    const session = await waitFor(() => data('session.started', mark)[0], 10_000, 'a session for the job');
    expect(session).toMatchObject({ affiliateId: 'admin:test', useType: 'maintenance' });
    const ended = await waitFor(() => data('print-job.ended', mark)[0], 60_000, 'the job ended');
    expect(ended).toMatchObject({ outcome: 'finished', owner: 'admin:test', sessionId: session.sessionId });
    expect((await gw.fetch(`${gw.url}/api/tools/printer/session/stop`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(200);
    await waitFor(() => data('session.ended', mark)[0], 10_000, 'the session ended');
  });

  it("the gateway's own API lists the jobs with their quotes: an affiliate's own, every one for the staff", async () => {
    const as = async (key: string, method: string, url: string) => {
      const res = await gw.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${key}` } });
      return { status: res.statusCode, body: res.json() };
    };
    const ada = (await as(keys.ada!, 'GET', '/api/print-jobs')).body as { id: string; file: string; owner: string; state: string; meteredG: number | null }[];
    expect(ada.every((j) => j.owner === 'ada')).toBe(true);
    expect(ada.find((j) => j.file === 'cube.gcode')).toMatchObject({ state: 'finished', meteredG: expect.any(Number) });
    const all = (await as(keys.maintainer!, 'GET', '/api/print-jobs?tool=printer')).body as { owner: string }[];
    expect(new Set(all.map((j) => j.owner))).toEqual(new Set(['ada', 'bo', 'maintainer:mo', 'admin:test']));
    const cube = ada.find((j) => j.file === 'cube.gcode')!;
    expect((await as(keys.bo!, 'GET', `/api/print-jobs/${cube.id}`)).status).toBe(404);
    expect((await as(keys.custodian!, 'DELETE', `/api/print-jobs/${cube.id}`)).status).toBe(403);
    expect((await as(keys.ada!, 'GET', '/api/print-jobs?tool=lathe')).status).toBe(404);
  });

  it("a quote above the tariff's confirmAbove waits for its owner's confirmation, then for their badge", async () => {
    const up = await prusaSlicerUpload(gw.url, 'printer', keys.bo!, 'dear.gcode', CUBE, true);
    const job = JSON.parse(up.body).ovn;
    expect(job.quote).toMatchObject({ useType: 'community', price: { total: expect.any(String) }, confirm: { above: '1.00', needed: true }, notes: [expect.stringContaining('confirm it before badging in')] });
    expect(job.releasedBy).toContain(`POST /api/print-jobs/${job.id}/confirm`);
    const mark = lastEventId();
    await badge(BO, 'session.started');
    await new Promise((r) => setTimeout(r, 1500)); // the queue looks every second
    expect(printer().currentJob).toBeNull();
    const confirm = (key: string) => gw.app.inject({ method: 'POST', url: `/api/print-jobs/${job.id}/confirm`, headers: { authorization: `Bearer ${key}` } });
    expect((await confirm(keys.ada!)).statusCode).toBe(404);
    expect((await confirm(keys.maintainer!)).statusCode).toBe(403);
    expect((await confirm(keys.bo!)).json()).toMatchObject({ confirmedAt: expect.any(String), state: 'queued' });
    expect(await waitFor(() => data('print-job.started', mark)[0], 10_000, 'the job started')).toMatchObject({ owner: 'bo', file: 'dear.gcode' });
    expect(data('print-job.confirmed', mark)[0]).toMatchObject({ owner: 'bo', by: 'bo' });
    expect((await call('POST', '/octoprint/printer/api/job', keys.bo!, { command: 'cancel' })).status).toBe(204);
    expect(await waitFor(() => data('print-job.ended', mark)[0], 30_000, 'the job ended')).toMatchObject({ outcome: 'cancelled', owner: 'bo' });
    await badge(BO, 'session.ended');
  });

  it('a job never prints on without its session: a forced stop cancels it at the printer', async () => {
    // three cubes: long enough to be stopped half-way
    expect((await prusaSlicerUpload(gw.url, 'printer', keys.ada!, 'stopped.gcode', Buffer.concat([CUBE, CUBE, CUBE]), true)).status).toBe(201);
    const mark = lastEventId();
    const session = await badge(ADA, 'session.started');
    await waitFor(() => data('print-job.started', mark)[0], 10_000, 'the job started');
    expect((await gw.fetch(`${gw.url}/api/tools/printer/session/stop`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(200);
    expect(await waitFor(() => data('print-job.cancelled', mark)[0], 10_000, 'the job cancelled')).toMatchObject({ owner: 'ada', sessionId: session.sessionId, reason: 'its session ended' });
    expect(await waitFor(() => data('print-job.ended', mark)[0], 30_000, 'the job ended')).toMatchObject({ outcome: 'cancelled', file: 'stopped.gcode' });
    await waitFor(() => data('session.ended', mark)[0], 10_000, 'the session ended');
  });

  it('refuses a file past the size limit or past its owner\'s quota as soon as it passes, keeping nothing of it', async () => {
    const big = await prusaSlicerUpload(gw.url, 'printer', keys.bo!, 'big.gcode', Buffer.concat([CUBE, CUBE, CUBE, CUBE]), false);
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body).message).toBe('this file is larger than the 0.3 MB the gateway takes (printJobs.maxFileMb)');
    // Ada keeps cube.gcode and stopped.gcode (four cubes): three more pass her 0.5 MB
    const over = await prusaSlicerUpload(gw.url, 'printer', keys.ada!, 'more.gcode', Buffer.concat([CUBE, CUBE, CUBE]), false);
    expect(over.status).toBe(413);
    expect(JSON.parse(over.body).message).toMatch(/^this file would take ada's files at tool "printer" past the quota of 0\.5 MB \(printJobs\.quotaMb; 0\.3 MB held\): delete some first$/);
    const dir = join(String(gw.journal.file).replace(/journal\.sqlite$/, ''), 'uploads', 'printer');
    expect(readdirSync(dir).filter((f) => f.endsWith('.part'))).toEqual([]);
    expect((await call('GET', '/octoprint/printer/api/files', keys.bo!)).body!.files.map((f: { name: string }) => f.name)).not.toContain('big.gcode');
  });
});
