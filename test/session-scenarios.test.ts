/**
 * Sessions end to end over the real serial stack: two simulated metering nodes and a
 * simulated Marlin printer, each on a pseudo-terminal, and the gateway in this process.
 * Every scenario is checked three ways: the journal (decisions, sessions and what they used),
 * the HTTP API, and the simulators' ground truth (relay, indications, energy, grams).
 *
 * Tools: `printer` (node n1 and printer mk3s; short idle timeout, handover allowed) and
 * `lathe` (node n2; no handover, long idle timeout, so that access scenarios there never race
 * an automatic switch-off).
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { MeteringNode } from '../gateway/src/devices/metering-node/driver.js';
import type { Printer } from '../gateway/src/devices/printer/driver.js';
import type { JournalEvent } from '../gateway/src/journal/journal.js';
import type { ToolSessionStats } from '../gateway/src/sessions/tool-sessions.js';
import type { SessionUsage } from '../gateway/src/sessions/usage.js';
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { PrinterSim } from '../simulators/src/printer/printer-sim.js';
import { sampleGcode } from '../simulators/src/printer/sample-gcode.js';
import { servePty, type SimTransport } from '../simulators/src/transports.js';
import { SIM_CLOCK_RATE, skipWithoutSocat, startTestGateway, tempDir, waitFor, type TestGateway } from './helpers.js';

const ADA = '04A1B2C3'; // default use type: project
const BO = '0411223344'; // default use type: community
const CY = 'C0FFEE01'; // qualified on the printer only
const DEE = 'D0D0D0D0'; // suspended
const EVE = 'E0E0E0E0'; // lathe qualification expired
const FAY = 'F0F0F0F0'; // no default use type: the lab's first
const UNKNOWN = 'AABBCCDD';

const TOOLS = ['printer', 'lathe'] as const;
type ToolId = (typeof TOOLS)[number];

/** INDICATE_PATTERN of the protocol. */
const DENIED = 2;
const WARNING = 3;

const POWER_W = 600;
const NODE_TIME_SCALE = 60;

interface ToolView {
  id: string;
  status: string;
  inUse: boolean;
  statusReason: string | null;
  statusBy: string | null;
  session: SessionUsage | null;
  badges: ToolSessionStats;
}

interface ApiError {
  error: string;
  message: string;
}

describe.skipIf(skipWithoutSocat)('session scenarios over serial (metering nodes and a printer on PTYs)', () => {
  const transports: SimTransport[] = [];
  const nodes = {
    printer: new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 50, powerW: POWER_W, timeScale: NODE_TIME_SCALE }),
    lathe: new MeteringNodeSim({ nodeId: 'n2', heartbeatS: 1, meterIntervalMs: 50, powerW: POWER_W, timeScale: NODE_TIME_SCALE }),
  };
  // Moves take their real time sped up 20×; the gateway reads the extruder every 50 ms. A
  // print starts by travelling for a second (as a real one starts by heating for minutes): SD
  // metering can only count from its first reading of E, and the purge line ends in a G92 reset.
  // Each layer extrudes ~16 mm before its G92 E0, well above maxRetractionMm (10), so a reset is
  // never taken for a retraction.
  const part = ['G28', 'G90', 'G1 X150 Y150 F600'].join('\n') + '\n' + sampleGcode({ layers: 3, movesPerLayer: 45, heat: false });
  const printerSim = new PrinterSim({ timeScale: 20, keepaliveMs: 100, sdFiles: { 'part.gco': part } });
  /** RELAY_SET commands each node received, in order: true = on. */
  const relaySets: Record<ToolId, boolean[]> = { printer: [], lathe: [] };
  let gw: TestGateway;

  const nodeOf = (tool: ToolId) => gw.devices.get(tool === 'printer' ? 'n1' : 'n2') as MeteringNode;
  const printer = () => gw.devices.get('mk3s') as Printer;
  const lastEventId = () => gw.journal.db.prepare('SELECT COALESCE(MAX(id), 0) FROM events').pluck().get() as number;
  const events = (kind: string, tool: ToolId, after: number): JournalEvent[] => gw.journal.events({ kind, deviceId: tool, afterId: after, limit: 1_000_000 });
  const data = (kind: string, tool: ToolId, after: number) => events(kind, tool, after).map((e) => e.data);

  async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await gw.fetch(`${gw.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  }
  const toolView = async (tool: ToolId) => (await api<ToolView>('GET', `/api/tools/${tool}`)).body;

  /** Badges in and waits for the session to start (the relay confirmed on). */
  async function badgeIn(tool: ToolId, uid: string): Promise<Record<string, unknown>> {
    const mark = lastEventId();
    nodes[tool].badge(uid);
    return waitFor(() => data('session.started', tool, mark)[0], 10_000, `session started at ${tool}`);
  }

  /** Waits for the next session end at a tool after `mark`, then for the relay to be off at the node. */
  async function sessionEnd(tool: ToolId, mark: number, ms = 10_000): Promise<Record<string, unknown>> {
    const ended = await waitFor(() => data('session.ended', tool, mark)[0], ms, `session ended at ${tool}`);
    await waitFor(() => !nodes[tool].truth().relay.sensed, 5000, `relay off at ${tool}`);
    return ended;
  }

  async function setBusy(tool: ToolId, busy: boolean): Promise<void> {
    nodes[tool].setBusy(busy);
    await waitFor(() => nodeOf(tool).isBusy === busy, 5000, `the gateway sees ${tool} ${busy ? 'busy' : 'not busy'}`);
  }

  /** Decisions journaled at a tool after `mark`, once `n` are there. */
  async function decisions(tool: ToolId, mark: number, n: number): Promise<Record<string, unknown>[]> {
    await waitFor(() => data('access.decision', tool, mark).length >= n, 5000, `${n} decisions at ${tool}`);
    return data('access.decision', tool, mark);
  }

  /** The node's indications from index `from` on, once `n` are there. */
  async function indications(tool: ToolId, from: number, n: number) {
    await waitFor(() => nodes[tool].truth().indications.length >= from + n, 5000, `${n} indications at ${tool}`);
    return nodes[tool].truth().indications.slice(from);
  }

  beforeAll(async () => {
    const dir = tempDir('scenarios');
    for (const tool of TOOLS) nodes[tool].on('received', (m) => m.type === 'RELAY_SET' && relaySets[tool].push(m.state === 1));
    const [n1, n2, mk3s] = [
      await servePty(nodes.printer, join(dir, 'ttyNODE1')),
      await servePty(nodes.lathe, join(dir, 'ttyNODE2')),
      await servePty(printerSim, join(dir, 'ttyPRINTER')),
    ];
    transports.push(n1, n2, mk3s);
    const reconnect = { initialMs: 50, maxMs: 300 };
    const both = [{ tool: 'printer' }, { tool: 'lathe' }];
    gw = await startTestGateway({
      devices: [
        { id: 'n1', kind: 'metering-node', nodeId: 'n1', maxClockRate: SIM_CLOCK_RATE, serial: { path: n1.address, reconnect } },
        { id: 'n2', kind: 'metering-node', nodeId: 'n2', maxClockRate: SIM_CLOCK_RATE, serial: { path: n2.address, reconnect } },
        {
          id: 'mk3s',
          kind: 'printer',
          serial: { path: mk3s.address, reconnect },
          pollIntervalS: 1,
          sdPositionPollMs: 50,
          timeouts: { communicationMs: 400, maxConsecutive: 3, startMs: 300 },
        },
      ],
      tools: [
        { id: 'printer', node: 'n1', printer: 'mk3s', idleTimeoutMin: 0.04, warnBeforeOffS: 1 },
        { id: 'lathe', node: 'n2', handover: false, idleTimeoutMin: 60, warnBeforeOffS: 0 },
      ],
      affiliates: [
        { id: 'ada', name: 'Ada', badges: [ADA], qualifications: both, useType: 'project' },
        { id: 'bo', name: 'Bo', badges: [BO], qualifications: both, useType: 'community' },
        { id: 'cy', name: 'Cy', badges: [CY], qualifications: [{ tool: 'printer' }] },
        { id: 'dee', name: 'Dee', status: 'suspended', badges: [DEE], qualifications: both },
        { id: 'eve', name: 'Eve', badges: [EVE], qualifications: [{ tool: 'printer' }, { tool: 'lathe', expires: '2020-01-01' }] },
        { id: 'fay', name: 'Fay', badges: [FAY], qualifications: both },
      ],
    });
    await waitFor(async () => (await gw.health()).devices.every((d) => d.state === 'online'), 15_000, 'devices online');
    await waitFor(() => printer().state === 'idle', 10_000, 'printer idle');
    // the file on the printer's card is known to the gateway: its prints are metered exactly
    expect((await gw.fetch(`${gw.url}/api/devices/mk3s/files/part.gco`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: part })).status).toBe(200);
  });

  afterAll(async () => {
    await gw?.stop();
    for (const t of transports) await t.close();
  });

  // Each scenario leaves both tools as it found them, even when it fails half-way.
  afterEach(async () => {
    for (const tool of TOOLS) {
      nodes[tool].setBusy(false);
      if ((await toolView(tool)).status !== 'available') await api('POST', `/api/tools/${tool}/status`, { status: 'available' });
      if ((await toolView(tool)).session) await api('POST', `/api/tools/${tool}/session/stop`, {});
      await waitFor(async () => !nodes[tool].truth().relay.sensed && !nodeOf(tool).isBusy && (await toolView(tool)).session === null, 5000, `${tool} off and idle`);
    }
  });

  describe('access decisions, with feedback at the tool', () => {
    it('denies an unknown badge, a suspended affiliate, a missing and an expired qualification', async () => {
      const mark = lastEventId();
      const shown = nodes.lathe.truth().indications.length;
      const relays = relaySets.lathe.length;
      for (const uid of [UNKNOWN, DEE, CY, EVE]) nodes.lathe.badge(uid);

      const got = await decisions('lathe', mark, 4);
      expect(got.map((d) => [d.kind, d.reason, d.affiliateId])).toEqual([
        ['deny', 'unknown-badge', null],
        ['deny', 'suspended', 'dee'],
        ['deny', 'not-qualified', 'cy'],
        ['deny', 'qualification-expired', 'eve'],
      ]);
      expect(got.map((d) => d.uid)).toEqual([UNKNOWN, DEE, CY, EVE]);
      const feedback = await indications('lathe', shown, 4);
      expect(feedback.map((i) => [i.pattern, i.text])).toEqual([
        [DENIED, 'unknown-badge'],
        [DENIED, 'suspended'],
        [DENIED, 'not-qualified'],
        [DENIED, 'qualification-expired'],
      ]);
      expect(relaySets.lathe.length).toBe(relays); // never asked to switch on
      expect(events('session.started', 'lathe', mark)).toEqual([]);
      // The same expired affiliate is qualified without expiry on the printer.
      await badgeIn('printer', EVE);
      const end = lastEventId();
      nodes.printer.badge(EVE);
      expect(await sessionEnd('printer', end)).toMatchObject({ affiliateId: 'eve', reason: 'badge-out' });
    });

    it('blocks a tool and takes it into maintenance through the API; the owner of a running session can still badge out', async () => {
      const mark = lastEventId();
      const shown = nodes.lathe.truth().indications.length;
      await badgeIn('lathe', ADA);

      const blocked = await api<ToolView>('POST', '/api/tools/lathe/status', { status: 'blocked', reason: 'chuck cracked' });
      expect(blocked.status).toBe(200);
      expect(blocked.body).toMatchObject({ status: 'blocked', statusReason: 'chuck cracked', statusBy: 'test', session: { affiliateId: 'ada' } });
      expect(data('tool.status', 'lathe', mark)).toEqual([{ status: 'blocked', reason: 'chuck cracked', by: 'test' }]);

      nodes.lathe.badge(BO); // qualified, but the tool is blocked (before "in use": the block is what to tell them)
      await decisions('lathe', mark, 2);
      nodes.lathe.badge(ADA); // her own session: badging out is always allowed
      const out = await sessionEnd('lathe', mark);
      expect(out).toMatchObject({ affiliateId: 'ada', reason: 'badge-out' });
      nodes.lathe.badge(FAY); // idle and blocked
      await decisions('lathe', mark, 4);

      expect((await api<ToolView>('POST', '/api/tools/lathe/status', { status: 'maintenance', reason: 'new belt' })).body).toMatchObject({ status: 'maintenance', statusReason: 'new belt' });
      nodes.lathe.badge(BO);
      await decisions('lathe', mark, 5);
      const bad = await api<ApiError>('POST', '/api/tools/lathe/status', { status: 'broken' });
      expect(bad.status).toBe(400);
      expect(bad.body.message).toMatch(/^body\.status: /);
      expect((await api<ApiError>('POST', '/api/tools/drill/status', { status: 'blocked' })).status).toBe(404);

      expect((await api<ToolView>('POST', '/api/tools/lathe/status', { status: 'available' })).body).toMatchObject({ status: 'available', session: null });
      await badgeIn('lathe', FAY);
      expect((await toolView('lathe')).inUse).toBe(true);

      expect(data('access.decision', 'lathe', mark).map((d) => [d.affiliateId, d.kind, d.reason])).toEqual([
        ['ada', 'grant', undefined],
        ['bo', 'deny', 'tool-blocked'],
        ['ada', 'badge-out', undefined],
        ['fay', 'deny', 'tool-blocked'],
        ['bo', 'deny', 'tool-in-maintenance'],
        ['fay', 'grant', undefined],
      ]);
      // A badge-out has no indication of its own: the relay going off is the feedback.
      const denied = (await indications('lathe', shown, 5)).filter((i) => i.pattern === DENIED);
      expect(denied.map((i) => i.text)).toEqual(['tool-blocked', 'tool-blocked', 'tool-in-maintenance']);
      expect(nodes.lathe.truth().relay.sensed).toBe(true); // Fay's session
    });

    it('denies another affiliate while a session runs at a tool without handover, and the session goes on', async () => {
      const mark = lastEventId();
      const shown = nodes.lathe.truth().indications.length;
      const relays = relaySets.lathe.length;
      await badgeIn('lathe', ADA);
      nodes.lathe.badge(BO);
      const [, denied] = await decisions('lathe', mark, 2);
      expect(denied).toMatchObject({ kind: 'deny', reason: 'in-use-by-other', affiliateId: 'bo' });
      expect((await indications('lathe', shown, 2)).map((i) => [i.pattern, i.text])).toEqual([
        [1, 'ada'], // granted
        [DENIED, 'in-use-by-other'],
      ]);
      expect(events('session.ended', 'lathe', mark)).toEqual([]);
      expect((await toolView('lathe')).session).toMatchObject({ affiliateId: 'ada' });
      expect(nodes.lathe.truth().relay.sensed).toBe(true);

      nodes.lathe.badge(ADA);
      expect(await sessionEnd('lathe', mark)).toMatchObject({ affiliateId: 'ada', reason: 'badge-out' });
      expect(relaySets.lathe.slice(relays)).toEqual([true, false]);
    });
  });

  describe('sessions', () => {
    it('badge in switches on, badge out switches off; energy matches the node\'s ground truth', async () => {
      const node = nodeOf('printer');
      const before = nodes.printer.truth(); // relay off: nothing accrues until it is on
      const mark = lastEventId();
      const started = await badgeIn('printer', ADA);
      expect(started).toMatchObject({ toolId: 'printer', affiliateId: 'ada', useType: 'project' });
      expect(nodes.printer.truth().relay).toEqual({ requested: true, sensed: true });

      await setBusy('printer', true);
      const atStart = node.meterTotal.energyMwh;
      await waitFor(() => node.meterTotal.energyMwh - atStart > 10_000, 10_000, '10 Wh metered');
      await setBusy('printer', false);
      // A report after the busy input went off, so the session's active time is complete.
      await waitFor(() => node.meterTotal.activeS === Math.floor(nodes.printer.truth().activeS), 5000, 'active time reported');
      const running = (await toolView('printer')).session!;
      expect(running).toMatchObject({ affiliateId: 'ada', endedAt: null });
      expect(running.energyWh).toBeGreaterThan(10);

      nodes.printer.badge(ADA);
      const ended = (await sessionEnd('printer', mark)) as unknown as SessionUsage & { reason: string };
      const after = nodes.printer.truth();
      expect(ended).toMatchObject({ sessionId: started.sessionId, affiliateId: 'ada', useType: 'project', reason: 'badge-out' });
      expect(relaySets.printer.slice(-2)).toEqual([true, false]);
      // The ground truth is what was physically drawn while the relay was on (the node draws
      // nothing with it off). The session reads the node's cumulative counters, in whole mWh,
      // at its start and its end; 1 % leaves room for a reading that timed out on a busy machine.
      const truthWh = (after.energyMwh - before.energyMwh) / 1000;
      expect(truthWh).toBeGreaterThan(10);
      expect(Math.abs(ended.energyWh - truthWh)).toBeLessThanOrEqual(truthWh * 0.01);
      // Whole seconds of the node's counter at both ends.
      expect(ended.activeS).toBeGreaterThan(0);
      expect(Math.abs(ended.activeS - (after.activeS - before.activeS))).toBeLessThanOrEqual(1);
      expect(ended.durationS).toBeGreaterThan(0);
      expect(ended.endedAt! >= ended.startedAt).toBe(true);
    });

    it('hands over to another qualified affiliate without switching off', async () => {
      const mark = lastEventId();
      await badgeIn('printer', ADA);
      await setBusy('printer', true);
      const relays = relaySets.printer.length;
      const shown = nodes.printer.truth().indications.length;
      nodes.printer.badge(BO);
      const bo = await waitFor(() => data('session.started', 'printer', mark)[1], 5000, "Bo's session");
      // Commands to the node arrive in order: a switch-off would come before Bo's feedback.
      expect((await indications('printer', shown, 1))[0]).toMatchObject({ pattern: 1, text: 'bo' });
      expect(data('access.decision', 'printer', mark).at(-1)).toMatchObject({ kind: 'handover', from: 'ada', to: 'bo' });
      expect(data('session.ended', 'printer', mark)).toEqual([expect.objectContaining({ affiliateId: 'ada', reason: 'handover' })]);
      expect(bo).toMatchObject({ affiliateId: 'bo', useType: 'community' }); // Bo's own default
      expect(relaySets.printer.length).toBe(relays); // no switching at all
      expect(nodes.printer.truth().relay.sensed).toBe(true);
      expect((await toolView('printer')).session).toMatchObject({ affiliateId: 'bo', useType: 'community' });

      await setBusy('printer', false);
      const afterHandover = lastEventId();
      nodes.printer.badge(BO);
      expect(await sessionEnd('printer', afterHandover)).toMatchObject({ affiliateId: 'bo', reason: 'badge-out', sessionId: bo.sessionId });
      expect(relaySets.printer.slice(relays)).toEqual([false]);
    });

    it('an idle session is warned, then ended by the idle timeout and switched off', async () => {
      const mark = lastEventId();
      const shown = nodes.printer.truth().indications.length;
      const started = await badgeIn('printer', FAY);
      expect(started).toMatchObject({ affiliateId: 'fay', useType: 'commercial' }); // the lab's first use type

      const warned = await waitFor(() => events('session.end-deferred', 'printer', mark)[0], 10_000, 'idle warning');
      expect(warned.data).toEqual({ sessionId: started.sessionId, affiliateId: 'fay', reason: 'idle-timeout', busy: false, offInS: 1 }); // warnBeforeOffS 1
      const ended = await sessionEnd('printer', mark);
      expect(ended).toMatchObject({ sessionId: started.sessionId, reason: 'idle-timeout' });
      expect(events('session.ended', 'printer', mark)[0]!.id).toBeGreaterThan(warned.id);
      // Not before the idle time and the warning have run out (idleTimeoutMin 0.04, warnBeforeOffS 1).
      expect(ended.durationS as number).toBeGreaterThanOrEqual(2.4 + 1 - 0.1);
      expect((await indications('printer', shown, 2)).map((i) => [i.pattern, i.text])).toEqual([
        [1, 'fay'],
        [WARNING, 'idle-timeout: switching off soon'],
      ]);
      expect(relaySets.printer.slice(-2)).toEqual([true, false]);
    });

    it('badge out while the printer prints from SD is deferred until the print ends; the session\'s grams match the printer', async () => {
      const truthBefore = printerSim.truth();
      const mark = lastEventId();
      const started = await badgeIn('printer', ADA);
      // Ground truth of the order: the printer's end of the print, then the relay switched off.
      const order: string[] = [];
      const onLine = (line: string) => line === 'Done printing file' && order.push('print done');
      const onNode = (m: { type: string; state?: number }) => m.type === 'RELAY_SET' && m.state === 0 && order.push('relay off');
      printerSim.on('line', onLine);
      nodes.printer.on('received', onNode);
      onTestFinished(() => {
        printerSim.off('line', onLine);
        nodes.printer.off('received', onNode);
      });
      const beforePrint = lastEventId();
      printerSim.startSdPrint('part.gco'); // from the printer's own menu
      // the journaled start, which stays: a poll of the current job could miss a short one
      const job = await waitFor(() => gw.journal.events({ kind: 'printer.job-started', deviceId: 'mk3s', afterId: beforePrint })[0], 10_000, 'SD print noticed');
      expect(job.data).toMatchObject({ mode: 'sd' });
      expect(printer().busy).toBe(true);

      const badgeOut = lastEventId();
      nodes.printer.badge(ADA);
      const deferred = await waitFor(() => data('session.end-deferred', 'printer', badgeOut)[0], 5000, 'end deferred');
      expect(deferred).toEqual({ sessionId: started.sessionId, affiliateId: 'ada', reason: 'badge-out', busy: true, offInS: 0 });
      // Still printing: the relay stays on and the session open.
      expect(printer().currentJob).not.toBeNull();
      expect(nodes.printer.truth().relay.sensed).toBe(true);
      expect((await toolView('printer')).session).toMatchObject({ sessionId: started.sessionId });

      const ended = (await sessionEnd('printer', badgeOut, 45_000)) as unknown as SessionUsage & { reason: string };
      expect(ended).toMatchObject({ sessionId: started.sessionId, reason: 'badge-out' });
      const jobEnd = gw.journal.events({ kind: 'printer.job-ended', deviceId: 'mk3s', afterId: mark })[0]!;
      expect(jobEnd.data).toMatchObject({ outcome: 'finished', mode: 'sd' });
      expect(events('session.ended', 'printer', badgeOut)[0]!.id).toBeGreaterThan(jobEnd.id);
      expect(order).toEqual(['print done', 'relay off']);
      expect(relaySets.printer.slice(-2)).toEqual([true, false]);

      const truth = printerSim.truth();
      const grams = truth.totalExtrudedG - truthBefore.totalExtrudedG;
      const mm = truth.totalExtrudedMm - truthBefore.totalExtrudedMm;
      expect(grams).toBeGreaterThan(0.1);
      expect(Math.abs(ended.filamentG - grams)).toBeLessThanOrEqual(grams * 0.001 + 0.001);
      expect(Math.abs(ended.filament[0]!.g - grams)).toBeLessThanOrEqual(grams * 0.001 + 0.001);
      expect(Math.abs(ended.filamentMm - mm)).toBeLessThanOrEqual(mm * 0.001);
      expect(ended.filament).toHaveLength(1);
      expect(ended.material).toEqual({ source: 'file', uncertaintyMm: 0, uncertaintyG: 0, flagged: null });
      // The printer's own job record and the session agree.
      expect(ended.filamentMm).toBeCloseTo(jobEnd.data.filamentMm as number, 1);
    });

    it('a handover mid-print splits the filament at that moment: each person is billed what was extruded in their time', async () => {
      const before = printerSim.truth().totalExtrudedMm;
      const mark = lastEventId();
      await badgeIn('printer', ADA);
      // Bo badges when the printer has executed line 100 of the file (of 199): the truth then is recorded
      let atBadge = NaN;
      const onLine = (n: number) => {
        if (n !== 100) return;
        atBadge = printerSim.truth().totalExtrudedMm - before;
        nodes.printer.badge(BO);
      };
      printerSim.on('sdLine', onLine);
      onTestFinished(() => void printerSim.off('sdLine', onLine));
      printerSim.startSdPrint('part.gco');
      const bo = await waitFor(() => data('session.started', 'printer', mark)[1], 15_000, "Bo's session");
      const atSeen = printerSim.truth().totalExtrudedMm - before;
      const ada = data('session.ended', 'printer', mark)[0] as unknown as SessionUsage & { reason: string };
      expect(ada).toMatchObject({ affiliateId: 'ada', reason: 'handover', material: { source: 'file' } });
      // Ada's share is what the printer had read by the handover: at least what it had printed
      // at her badge less one status interval (50 ms here), at most what it had when Bo's session
      // was seen. A job counts from its own start: what the last print's end retracted (2 mm),
      // which the motor's truth counted then, is counted again (as in print-host mode).
      expect(atBadge).toBeGreaterThan(10);
      expect(ada.filamentMm).toBeGreaterThanOrEqual(atBadge - 5);
      expect(ada.filamentMm).toBeLessThanOrEqual(atSeen + 2 + 1e-6);

      const badgeOut = lastEventId();
      nodes.printer.badge(BO);
      const boEnd = (await sessionEnd('printer', badgeOut, 45_000)) as unknown as SessionUsage;
      expect(boEnd).toMatchObject({ sessionId: bo.sessionId, material: { source: 'file' } });
      // together, exactly the print
      const job = gw.journal.events({ kind: 'printer.job-ended', deviceId: 'mk3s', afterId: mark })[0]!.data;
      expect(ada.filamentMm + boEnd.filamentMm).toBeCloseTo(job.filamentMm as number, 2);
      const over = (job.filamentMm as number) - (printerSim.truth().totalExtrudedMm - before);
      expect(over).toBeGreaterThanOrEqual(-0.01);
      expect(over).toBeLessThanOrEqual(2.01);
    });

    it('a node fault ends a busy session at once and switches off; a warning does not', async () => {
      const mark = lastEventId();
      const started = await badgeIn('printer', BO);
      await setBusy('printer', true);

      const relays = relaySets.printer.length;
      const shown = nodes.printer.truth().indications.length;
      nodes.printer.fault(0x10, 1, 'filter dusty');
      await waitFor(() => gw.journal.events({ kind: 'device.fault', deviceId: 'n1', afterId: mark }).length === 1, 5000, 'warning journaled');
      // Commands to the node arrive in order: a switch-off for the warning would come before
      // the feedback to a badge that follows it.
      nodes.printer.badge(UNKNOWN);
      expect((await indications('printer', shown, 1))[0]).toMatchObject({ pattern: DENIED, text: 'unknown-badge' });
      expect(relaySets.printer.length).toBe(relays);
      expect((await toolView('printer')).session).toMatchObject({ sessionId: started.sessionId });

      nodes.printer.fault(0x21, 2, 'overcurrent');
      const ended = await sessionEnd('printer', mark);
      expect(ended).toMatchObject({ sessionId: started.sessionId, affiliateId: 'bo', reason: 'fault' });
      expect(events('session.end-deferred', 'printer', mark)).toEqual([]); // not deferred, though busy
      expect(nodeOf('printer').isBusy).toBe(true);
      expect(relaySets.printer.slice(-2)).toEqual([true, false]);
      expect(gw.journal.events({ kind: 'device.fault', deviceId: 'n1', afterId: mark }).map((e) => e.data)).toEqual([
        { code: 0x10, severity: 1, text: 'filter dusty' },
        { code: 0x21, severity: 2, text: 'overcurrent' },
      ]);
      for (const [code, text] of [[0x10, 'filter dusty'], [0x21, 'overcurrent']] as const) nodes.printer.fault(code, 2, text, false);
      await waitFor(() => gw.journal.events({ kind: 'device.fault-cleared', deviceId: 'n1', afterId: mark }).length === 2, 5000, 'faults cleared');
    });

    it('starts with the affiliate\'s use type; a change is journaled and ends up on the session; bad requests are refused clearly', async () => {
      const noSession = await api<ApiError>('PUT', '/api/tools/printer/session/use-type', { useType: 'community' });
      expect(noSession).toEqual({ status: 409, body: { error: 'conflict', message: 'no session is running at tool "printer"' } });

      const mark = lastEventId();
      const started = await badgeIn('printer', ADA);
      await setBusy('printer', true);
      expect(started.useType).toBe('project');
      expect((await toolView('printer')).session).toMatchObject({ useType: 'project' });

      const changed = await api<SessionUsage>('PUT', '/api/tools/printer/session/use-type', { useType: 'community' });
      expect(changed.status).toBe(200);
      expect(changed.body).toMatchObject({ sessionId: started.sessionId, useType: 'community', endedAt: null });
      expect(data('session.use-type', 'printer', mark)).toEqual([{ sessionId: started.sessionId, useType: 'community', previous: 'project', by: 'test' }]);
      expect((await toolView('printer')).session).toMatchObject({ useType: 'community' });

      const unknown = await api<ApiError>('PUT', '/api/tools/printer/session/use-type', { useType: 'hobby' });
      expect(unknown).toEqual({ status: 400, body: { error: 'bad-request', message: 'unknown use type "hobby" (this lab has commercial, community, project)' } });
      const empty = await api<ApiError>('PUT', '/api/tools/printer/session/use-type', {});
      expect(empty.status).toBe(400);
      expect(empty.body.message).toMatch(/^body\.useType: /);
      expect((await api<ApiError>('PUT', '/api/tools/drill/session/use-type', { useType: 'community' })).status).toBe(404);
      expect(data('session.use-type', 'printer', mark)).toHaveLength(1);

      await setBusy('printer', false);
      nodes.printer.badge(ADA);
      expect(await sessionEnd('printer', mark)).toMatchObject({ sessionId: started.sessionId, useType: 'community', reason: 'badge-out' });
    });

    it('a maintainer\'s force stop ends a busy session at once and switches off', async () => {
      const noSession = await api<ApiError>('POST', '/api/tools/printer/session/stop', {});
      expect(noSession.status).toBe(409);

      const mark = lastEventId();
      const started = await badgeIn('printer', CY);
      await setBusy('printer', true);
      const stopped = await api<SessionUsage>('POST', '/api/tools/printer/session/stop', {});
      expect(stopped.status).toBe(200);
      expect(stopped.body).toMatchObject({ sessionId: started.sessionId, affiliateId: 'cy' });
      expect(stopped.body.endedAt).not.toBeNull();

      const ended = await sessionEnd('printer', mark);
      expect(ended).toMatchObject({ sessionId: started.sessionId, reason: 'force-stop', stoppedBy: 'test' });
      expect(events('session.end-deferred', 'printer', mark)).toEqual([]);
      expect(nodeOf('printer').isBusy).toBe(true); // cut while busy: a maintainer's call
      expect(relaySets.printer.slice(-2)).toEqual([true, false]);
      expect((await toolView('printer')).session).toBeNull();
    });

    it('a badge flood is cut to a rate, counted, logged, and the tool still works afterwards', async () => {
      const stats0 = { ...(await toolView('lathe')).badges };
      const mark = lastEventId();
      const logs0 = gw.logs.length;
      for (let i = 0; i < 300; i++) nodes.lathe.badge(`F1${i.toString(16).padStart(6, '0').toUpperCase()}`);

      await waitFor(async () => (await toolView('lathe')).badges.badges - stats0.badges === 300, 20_000, 'all 300 badges received');
      const floodLogs = () => gw.logs.slice(logs0).filter((l) => l.level === 40 && /badge flood/.test(String(l.msg)));
      // Every window with drops is reported, also when no further badge comes to close it.
      const stats = (await toolView('lathe')).badges;
      const dropped = stats.floodDropped - stats0.floodDropped;
      const decided = stats.decisions - stats0.decisions;
      expect(dropped).toBeGreaterThan(0);
      expect(decided + dropped).toBe(300);
      await waitFor(() => floodLogs().reduce((a, l) => a + (l.dropped as number), 0) === dropped, 5000, 'flood logged');
      expect(floodLogs()[0]).toMatchObject({ tool: 'lathe', msg: expect.stringMatching(/^badge flood at the tool: \d+ badges ignored/) });

      const got = await decisions('lathe', mark, decided);
      expect(got).toHaveLength(decided);
      expect(new Set(got.map((d) => d.reason))).toEqual(new Set(['unknown-badge']));
      expect(nodes.lathe.truth().relay.sensed).toBe(false);

      const afterFlood = lastEventId();
      await badgeIn('lathe', ADA);
      nodes.lathe.badge(ADA);
      expect(await sessionEnd('lathe', afterFlood)).toMatchObject({ affiliateId: 'ada', reason: 'badge-out' });
      expect((await toolView('lathe')).badges.floodDropped).toBe(stats.floodDropped);
    });
  });

  describe('GET /api/sessions', () => {
    it('filters ended sessions by tool, affiliate, use type and time', async () => {
      const t0 = new Date().toISOString();
      const run = async (tool: ToolId, uid: string) => {
        const mark = lastEventId();
        await badgeIn(tool, uid);
        nodes[tool].badge(uid);
        return (await sessionEnd(tool, mark)) as unknown as SessionUsage;
      };
      const a = await run('lathe', ADA); // project
      const b = await run('lathe', BO); // community
      // t1 strictly after b ended, and before c starts.
      await waitFor(() => Date.now() > Date.parse(b.endedAt!), 1000, 'the clock moved on');
      const t1 = new Date().toISOString();
      const c = await run('printer', FAY); // commercial

      const ids = async (query: string) => {
        const res = await api<SessionUsage[]>('GET', `/api/sessions?${query}`);
        expect(res.status).toBe(200);
        return res.body.map((s) => s.sessionId);
      };
      const q = (params: Record<string, string>) => new URLSearchParams(params).toString();
      expect(await ids(q({ from: t0 }))).toEqual([c.sessionId, b.sessionId, a.sessionId]); // newest first
      expect(await ids(q({ from: t0, tool: 'lathe' }))).toEqual([b.sessionId, a.sessionId]);
      expect(await ids(q({ from: t0, tool: 'printer' }))).toEqual([c.sessionId]);
      expect(await ids(q({ from: t0, affiliate: 'bo' }))).toEqual([b.sessionId]);
      expect(await ids(q({ from: t0, useType: 'project' }))).toEqual([a.sessionId]);
      expect(await ids(q({ from: t0, useType: 'commercial' }))).toEqual([c.sessionId]);
      expect(await ids(q({ from: t0, tool: 'printer', affiliate: 'ada' }))).toEqual([]);
      expect(await ids(q({ from: t0, to: t1 }))).toEqual([b.sessionId, a.sessionId]);
      expect(await ids(q({ from: t1 }))).toEqual([c.sessionId]);
      expect(await ids(q({ from: t0, limit: '1' }))).toEqual([c.sessionId]);
      // Everything ended before t0 is older: the whole list holds these three and the earlier ones.
      const all = await ids(q({ limit: '10000' }));
      expect(all.slice(0, 3)).toEqual([c.sessionId, b.sessionId, a.sessionId]);
      expect(all).toHaveLength(gw.journal.events({ kind: 'session.ended', limit: 1_000_000 }).length);
      expect(await ids(q({ to: t0, from: '2000-01-01' }))).toEqual(all.slice(3));

      const bad = await api<ApiError>('GET', '/api/sessions?from=yesterday');
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({ error: 'bad-request', message: expect.stringMatching(/^query\.from: a date/) });
    });
  });
});
