/**
 * Networked instruments as shared tools, end to end over real TCP MQTT: the gateway's
 * embedded broker, the simulated Mosquito rig and smart plug (mqtt.js clients with last
 * wills) started by the gateway with credentials for this run, a networked badge reader
 * read from the embedded broker, sessions journaled and compared with the simulators'
 * ground truth. And the pure counter accounting.
 */
import fc from 'fast-check';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTelemetry, INSTRUMENT_TOLERANCE_S, instrumentPhysics, NO_COUNTS, type CounterState, type Counters } from '../gateway/src/devices/mqtt-instrument/counters.js';
import { CounterStore } from '../gateway/src/devices/mqtt-instrument/counter-store.js';
import { PAST_BOOTS } from '../gateway/src/devices/metering-node/meter.js';
import { Journal } from '../gateway/src/journal/journal.js';
import type { MqttInstrument } from '../gateway/src/devices/mqtt-instrument/driver.js';
import { formatIssues } from '../gateway/src/config/load.js';
import { configSchema } from '../gateway/src/config/schema.js';
import { MqttCredentials } from '../gateway/src/mqtt/credentials.js';
import type { SessionEvent } from '../gateway/src/mqtt/schemas.js';
import { topicsFor } from '../gateway/src/mqtt/topics.js';
import { RigSim } from '../simulators/src/rig/rig-sim.js';
import { join } from 'node:path';
import { freePort, SIM_CLOCK_RATE, startTestGateway, tempDir, waitFor, type TestGateway } from './helpers.js';

const BASE = 'ovn/instrument-lab';
const T = topicsFor(BASE);
/** Simulated seconds per real second: a few real seconds make watt-hours. */
const TIME_SCALE = 60;
/** How close a session's figures are to the simulator's truth: rounding of the reported counters, and the idle draw between the relay switching and the reading. */
const TOLERANCE = { energyWh: 0.05, relative: 0.01, activeS: 0.5 };

const ADA = '04A1B2C3';
const BO = '0411223344';

interface Usage {
  sessionId: string;
  reason: string;
  energyWh: number;
  activeS: number;
  durationS: number;
}

let gw: TestGateway;
let rig: RigSim;
let plug: RigSim;
let doorReader: MqttClient;
let watcher: MqttClient;
const sessionEvents: SessionEvent[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Readers take the same card again within a second as the card still held: taps are spaced more. */
let lastTap = 0;
async function tap(publish: () => unknown): Promise<void> {
  await sleep(Math.max(0, lastTap + 1100 - Date.now()));
  lastTap = Date.now();
  await publish();
}
const ended = (tool: string) => gw.journal.events({ kind: 'session.ended', deviceId: tool, limit: 1000 }).map((e) => e.data as unknown as Usage);
const started = (tool: string) => gw.journal.events({ kind: 'session.started', deviceId: tool, limit: 1000 });
const instrument = (id: string) => gw.devices.get(id) as MqttInstrument;

function expectClose(actual: number, truth: number, abs: number, what: string): void {
  expect(Math.abs(actual - truth), `${what}: ${actual} vs truth ${truth}`).toBeLessThanOrEqual(abs + TOLERANCE.relative * truth);
}

beforeAll(async () => {
  gw = await startTestGateway({
    mqtt: { listen: '127.0.0.1:0', baseTopic: BASE, connectionsPerMinute: 10_000, heartbeatTimeoutS: 5 },
    simulators: [
      { kind: 'rig', device: 'rig-1', timeScale: TIME_SCALE, powerW: 300, idleW: 4, telemetryIntervalMs: 200 },
      { kind: 'rig', device: 'plug-1', model: 'smart-plug', timeScale: TIME_SCALE, powerW: 1200, idleW: 2, telemetryIntervalMs: 200 },
    ],
    devices: [
      { id: 'rig-1', kind: 'mqtt-instrument', model: 'mosquito-rig', maxClockRate: SIM_CLOCK_RATE },
      { id: 'plug-1', kind: 'mqtt-instrument', model: 'smart-plug', busyAboveW: 10, maxClockRate: SIM_CLOCK_RATE },
      // a plug of no tool, driven by hand below
      { id: 'plug-9', kind: 'mqtt-instrument', model: 'smart-plug' },
      // the rig's own reader, and a reader at the door of the plug's room, both read from the embedded broker
      { id: 'rig-1-reader', kind: 'mqtt-badge-reader', topic: T.badge('rig-1') },
      { id: 'door-reader-in', kind: 'mqtt-badge-reader', topic: T.badge('door-reader') },
    ],
    tools: [
      { id: 'rig', switch: 'rig-1', meter: 'rig-1', readers: ['rig-1-reader'], idleTimeoutMin: 60, warnBeforeOffS: 0 },
      { id: 'kiln', switch: 'plug-1', meter: 'plug-1', readers: ['door-reader-in'], idleTimeoutMin: 60, warnBeforeOffS: 0 },
    ],
    affiliates: [
      { id: 'ada', name: 'Ada', badges: [ADA], qualifications: [{ tool: 'rig' }, { tool: 'kiln' }] },
      { id: 'bo', name: 'Bo', badges: [BO], qualifications: [{ tool: 'kiln' }] },
    ],
  });
  const sims = gw.simulators.map((s) => s.sim).filter((s): s is RigSim => s instanceof RigSim);
  rig = sims.find((s) => s.id === 'rig-1')!;
  plug = sims.find((s) => s.id === 'plug-1')!;
  // a real networked reader with its own credentials, as `ovn-gateway devices add-mqtt door-reader` makes them
  const { secret } = await new MqttCredentials(gw.journal).add('door-reader');
  const url = gw.broker!.addresses.tcp!;
  doorReader = await connectAsync(url, { clientId: 'door-reader', username: 'door-reader', password: secret, reconnectPeriod: 0 });
  watcher = await connectAsync(url, { ...gw.broker!.internalClientOptions('test-watcher'), reconnectPeriod: 0 });
  watcher.on('message', (_t, p) => sessionEvents.push(JSON.parse(p.toString()) as SessionEvent));
  await watcher.subscribeAsync(T.sessions, { qos: 1 });
  await waitFor(() => instrument('rig-1').isOnline && instrument('plug-1').isOnline && instrument('rig-1').relayKnown, 10_000, 'both instruments online');
}, 30_000);

afterAll(async () => {
  await watcher?.endAsync(true);
  await doorReader?.endAsync(true);
  await gw?.stop();
});

describe('a Mosquito rig as a shared tool', () => {
  it('badge → relay command → telemetry → badge-out: energy and active time match the rig’s truth across lost messages, a dropped connection and a reboot', { timeout: 60_000 }, async () => {
    const before = rig.truth();
    expect(before.relay).toBe(false);

    // Ada badges at the rig's reader: the relay is switched on by command, the session opens
    await tap(() => rig.badge(ADA));
    await waitFor(() => started('rig').length === 1, 10_000, 'session started');
    await waitFor(() => rig.truth().relay, 5000, 'the rig’s relay on');
    rig.setBusy(true);
    await sleep(800);

    // a flaky period: telemetry lost, the connection dropped (the will), bursts
    rig.drop(3);
    await sleep(800);
    rig.setFlaky(true);
    rig.dropConnection();
    await waitFor(() => gw.journal.events({ kind: 'device.lost', deviceId: 'rig-1' }).length > 0, 10_000, 'the rig lost');
    await sleep(2500);
    rig.setFlaky(false);
    await waitFor(() => instrument('rig-1').isOnline && rig.truth().connected, 10_000, 'the rig back');
    expect(started('rig')).toHaveLength(1); // the session went on, as with a lost node
    await sleep(500);

    // idle, then the rig reboots: it comes back with its relay off, which ends the session
    rig.setBusy(false);
    await sleep(300);
    const atReboot = rig.truth();
    rig.reboot();
    await waitFor(() => ended('rig').length === 1, 15_000, 'the session ended by the reboot');
    const first = ended('rig')[0]!;
    expect(first.reason).toBe('relay-failed');
    expect(gw.journal.events({ kind: 'device.rebooted', deviceId: 'rig-1' })).toHaveLength(1);
    const stats = instrument('rig-1').stats;
    expect(stats.lost).toBeGreaterThanOrEqual(3);
    expect(atReboot.telemetry.dropped).toBeGreaterThanOrEqual(3);
    expectClose(first.energyWh, atReboot.total.energyWh - before.total.energyWh, TOLERANCE.energyWh, 'energy of the first session');
    expectClose(first.activeS, atReboot.total.activeS - before.total.activeS, TOLERANCE.activeS, 'active time of the first session');
    expect(first.energyWh).toBeGreaterThan(5); // about 2.5 simulated minutes at 300 W

    // a second session on the rebooted rig, counted from its new boot
    await waitFor(() => instrument('rig-1').isOnline, 10_000, 'the rig online after its reboot');
    const before2 = rig.truth();
    await tap(() => rig.badge(ADA));
    await waitFor(() => started('rig').length === 2 && rig.truth().relay, 10_000, 'second session started');
    rig.setBusy(true);
    await sleep(1000);
    rig.setBusy(false);
    await sleep(300);
    await tap(() => rig.badge(ADA));
    await waitFor(() => ended('rig').length === 2, 10_000, 'second session ended');
    await waitFor(() => !rig.truth().relay, 5000, 'relay off');
    const second = ended('rig')[1]!;
    const after = rig.truth();
    expect(second.reason).toBe('badge-out');
    expectClose(second.energyWh, after.total.energyWh - before2.total.energyWh, TOLERANCE.energyWh, 'energy of the second session');
    expectClose(second.activeS, after.total.activeS - before2.total.activeS, TOLERANCE.activeS, 'active time of the second session');

    // both sessions on the embedded broker's sessions topic
    await waitFor(() => sessionEvents.filter((e) => e.toolId === 'rig').length === 4, 5000, 'four session events');
    const events = sessionEvents.filter((e) => e.toolId === 'rig');
    expect(events.map((e) => e.event)).toEqual(['started', 'ended', 'started', 'ended']);
    expect(events[3]).toMatchObject({ sessionId: second.sessionId, affiliateId: 'ada', reason: 'badge-out', usage: { energyWh: second.energyWh } });
  });

  it('a malformed or invalid telemetry message is counted and dropped; the running session keeps its records', { timeout: 30_000 }, async () => {
    const rejected = () => gw.broker!.health().rejected;
    const r0 = rejected();
    const before = rig.truth();
    await tap(() => rig.badge(ADA));
    await waitFor(() => started('rig').length === 3 && rig.truth().relay, 10_000, 'session started');
    rig.setBusy(true);
    rig.malformed();
    await waitFor(() => rejected().malformed > r0.malformed && rejected().invalid > r0.invalid, 5000, 'both counted');
    await sleep(600);
    rig.setBusy(false);
    await sleep(300);
    await tap(() => rig.badge(ADA));
    await waitFor(() => ended('rig').length === 3, 10_000, 'session ended');
    await waitFor(() => !rig.truth().relay, 5000, 'relay off');
    const s = ended('rig')[2]!;
    expect(s.reason).toBe('badge-out');
    expect(instrument('rig-1').stats.implausibleReadings).toBe(0);
    expectClose(s.energyWh, rig.truth().total.energyWh - before.total.energyWh, TOLERANCE.energyWh, 'energy');
    expect(gw.logs.some((l) => l.level === 40 && l.device === 'rig-1' && l.reason === 'malformed' && String(l.msg).includes(T.telemetry('rig-1')))).toBe(true);
  });

  it('a warning fault is journaled and the session goes on; a critical one ends it at once and switches off, busy or not', { timeout: 30_000 }, async () => {
    const n = ended('rig').length;
    await tap(() => rig.badge(ADA));
    await waitFor(() => started('rig').length === n + 1 && rig.truth().relay, 10_000, 'session started');
    rig.setBusy(true);
    rig.fault('fan', 'warning', 'fan slow');
    await waitFor(() => gw.journal.events({ kind: 'device.fault', deviceId: 'rig-1' }).length === 1, 5000, 'warning journaled');
    await sleep(300);
    expect(ended('rig')).toHaveLength(n);
    // a warning is shown, but the rig is still fit for work
    expect(gw.devices.get('rig-1')!.health().state).toBe('online');
    rig.fault('overtemp', 'critical', 'sensor head over 80 °C');
    await waitFor(() => ended('rig').length === n + 1, 5000, 'session ended by the fault');
    expect(ended('rig')[n]!.reason).toBe('fault');
    expect(gw.devices.get('rig-1')!.health()).toMatchObject({ state: 'fault', reason: 'sensor head over 80 °C' });
    await waitFor(() => !rig.truth().relay, 5000, 'switched off while busy');
    rig.clearFault('fan');
    rig.clearFault('overtemp');
    rig.setBusy(false);
    await waitFor(() => gw.journal.events({ kind: 'device.fault-cleared', deviceId: 'rig-1' }).length === 2, 5000, 'faults cleared');
  });

  it('the last will makes the rig offline; the session stays open and its energy catches up when the rig is back', { timeout: 30_000 }, async () => {
    const before = rig.truth();
    await tap(() => rig.badge(ADA));
    const n = ended('rig').length;
    await waitFor(() => started('rig').length === n + 1 && rig.truth().relay, 10_000, 'session started');
    rig.setBusy(true);
    await sleep(500);
    await rig.unplug(); // no DISCONNECT: the broker publishes the will
    await waitFor(() => !instrument('rig-1').isOnline, 10_000, 'the rig offline');
    const lost = gw.journal.events({ kind: 'device.lost', deviceId: 'rig-1' }).at(-1)!;
    expect(String(lost.data.reason)).toMatch(/disconnected|offline/);
    expect(gw.devices.get('rig-1')!.health().state).toBe('offline');
    // the rig keeps working while it is away; its counters keep counting
    await sleep(1000);
    expect(ended('rig')).toHaveLength(n);
    await rig.replug();
    await waitFor(() => instrument('rig-1').isOnline, 10_000, 'the rig back');
    rig.setBusy(false);
    await sleep(300);
    await tap(() => rig.badge(ADA));
    await waitFor(() => ended('rig').length === n + 1, 10_000, 'session ended');
    await waitFor(() => !rig.truth().relay, 5000, 'relay off');
    const s = ended('rig')[n]!;
    expectClose(s.energyWh, rig.truth().total.energyWh - before.total.energyWh, TOLERANCE.energyWh, 'energy across the outage');
  });
});

describe('a smart plug as a shared tool', () => {
  it('a badge at a networked door reader switches the plug on; busy from its power; energy and time match its truth', { timeout: 30_000 }, async () => {
    const before = plug.truth();
    await tap(() => doorReader.publishAsync(T.badge('door-reader'), JSON.stringify({ uid: BO }), { qos: 1 }));
    await waitFor(() => started('kiln').length === 1 && plug.truth().relay, 10_000, 'the kiln session started');
    expect(instrument('plug-1').isBusy).toBe(false); // 2 W idle: below busyAboveW
    plug.setBusy(true); // the load draws 1200 W
    await waitFor(() => instrument('plug-1').isBusy, 5000, 'busy from the power');
    // badge-out while the kiln draws power is deferred until it stops
    await tap(() => doorReader.publishAsync(T.badge('door-reader'), JSON.stringify({ uid: BO }), { qos: 1 }));
    await waitFor(() => gw.journal.events({ kind: 'session.end-deferred', deviceId: 'kiln' }).length === 1, 5000, 'end deferred');
    await sleep(800);
    plug.setBusy(false);
    await waitFor(() => ended('kiln').length === 1, 10_000, 'the kiln session ended');
    await waitFor(() => !plug.truth().relay, 5000, 'plug off');
    const s = ended('kiln')[0]!;
    const after = plug.truth();
    expect(s).toMatchObject({ reason: 'badge-out' });
    expectClose(s.energyWh, after.total.energyWh - before.total.energyWh, TOLERANCE.energyWh, 'energy');
    // a plug counts its powered time: that is the session's active time
    expectClose(s.activeS, after.total.runtimeS - before.total.runtimeS, TOLERANCE.activeS, 'powered time');
    expect(s.energyWh).toBeGreaterThan(10);
  });
});

describe('a gateway restart during a busy session at a rig', () => {
  it('the rig keeps counting while the gateway is away: the interrupted and the resumed session together match its truth', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const dataDir = join(tempDir('instrument-restart'), 'data');
    const cfg = {
      gateway: { dataDir, checkpointS: 1 },
      mqtt: { listen: `127.0.0.1:${port}`, baseTopic: BASE, connectionsPerMinute: 10_000 },
      devices: [
        { id: 'rig-2', kind: 'mqtt-instrument', maxClockRate: SIM_CLOCK_RATE },
        { id: 'rig-2-reader', kind: 'mqtt-badge-reader', topic: T.badge('rig-2') },
      ],
      tools: [{ id: 'bench', switch: 'rig-2', meter: 'rig-2', readers: ['rig-2-reader'], idleTimeoutMin: 60 }],
      affiliates: [{ id: 'ada', name: 'Ada', badges: [ADA], qualifications: [{ tool: 'bench' }] }],
    };
    let gw1: TestGateway | null = await startTestGateway(cfg);
    let gw2: TestGateway | null = null;
    // a rig of its own process's kind: it outlives the gateway, with credentials in the journal
    const { secret } = await new MqttCredentials(gw1.journal).add('rig-2');
    const rig2 = new RigSim({ url: `mqtt://127.0.0.1:${port}`, deviceId: 'rig-2', password: secret, baseTopic: BASE, timeScale: TIME_SCALE, powerW: 300, idleW: 4, telemetryIntervalMs: 200 });
    try {
      rig2.start();
      const dev = (g: TestGateway) => g.devices.get('rig-2') as MqttInstrument;
      await waitFor(() => dev(gw1!).isOnline && dev(gw1!).relayKnown, 10_000, 'rig online');
      const before = rig2.truth();
      await tap(() => rig2.badge(ADA));
      await waitFor(() => gw1!.journal.events({ kind: 'session.started', deviceId: 'bench' }).length === 1 && rig2.truth().relay, 10_000, 'session started');
      rig2.setBusy(true);
      await sleep(1500);
      await gw1.stop(); // busy: the relay stays on, the session open with its checkpoint
      gw1 = null;
      await sleep(1500); // the rig works on while the gateway is away
      expect(rig2.truth().relay).toBe(true);
      gw2 = await startTestGateway(cfg);
      const events = (kind: string) => gw2!.journal.events({ kind, deviceId: 'bench' });
      await waitFor(() => events('session.started').length === 2, 15_000, 'the session resumed');
      expect(events('session.ended').map((e) => e.data.reason)).toEqual(['interrupted']);
      rig2.setBusy(false);
      await sleep(300);
      await tap(() => rig2.badge(ADA));
      await waitFor(() => events('session.ended').length === 2, 10_000, 'the resumed session ended');
      await waitFor(() => !rig2.truth().relay, 5000, 'relay off');
      const [interrupted, resumed] = events('session.ended').map((e) => e.data as unknown as Usage);
      expect(resumed!.reason).toBe('badge-out');
      const truth = rig2.truth().total.energyWh - before.total.energyWh;
      expect(truth).toBeGreaterThan(15); // most of it while the gateway was away or restarting
      expectClose(interrupted!.energyWh + resumed!.energyWh, truth, TOLERANCE.energyWh, 'energy of both sessions');
    } finally {
      await rig2.stop();
      await gw2?.stop();
      await gw1?.stop();
    }
  });
});

describe('a storage that refuses writes', () => {
  it('the rig’s busy and meter go on following it while its counters cannot be saved, across a reboot; they are saved once the storage accepts writes again', { timeout: 60_000 }, async () => {
    // sessions checkpoint rarely here: what this looks at is the instrument's own saves
    const g = await startTestGateway({
      gateway: { checkpointS: 300 },
      mqtt: { listen: '127.0.0.1:0', baseTopic: BASE, connectionsPerMinute: 10_000 },
      simulators: [{ kind: 'rig', device: 'rig-3', timeScale: TIME_SCALE, powerW: 300, idleW: 4, telemetryIntervalMs: 200 }],
      devices: [
        { id: 'rig-3', kind: 'mqtt-instrument', model: 'mosquito-rig', maxClockRate: SIM_CLOCK_RATE },
        { id: 'rig-3-reader', kind: 'mqtt-badge-reader', topic: T.badge('rig-3') },
      ],
      tools: [{ id: 'scope', switch: 'rig-3', meter: 'rig-3', readers: ['rig-3-reader'], idleTimeoutMin: 60 }],
      affiliates: [{ id: 'ada', name: 'Ada', badges: [ADA], qualifications: [{ tool: 'scope' }] }],
    });
    try {
      const sim = g.simulators.map((s) => s.sim).find((s): s is RigSim => s instanceof RigSim)!;
      const dev = g.devices.get('rig-3') as MqttInstrument;
      const events = (kind: string, deviceId: string) => g.journal.events({ kind, deviceId });
      const store = new CounterStore(g.journal.db);
      await waitFor(() => dev.isOnline && dev.relayKnown, 10_000, 'rig online');
      const before = sim.truth();
      await tap(() => sim.badge(ADA));
      await waitFor(() => events('session.started', 'scope').length === 1 && sim.truth().relay, 10_000, 'session started');
      await waitFor(() => store.load('rig-3') !== null, 5000, 'counters saved');
      const saved = store.load('rig-3')!;
      g.journal.db.pragma('query_only = ON'); // as on a file system remounted read-only: every write fails with SQLITE_READONLY
      try {
        sim.setBusy(true);
        await waitFor(() => dev.isBusy, 5000, 'busy while the counters cannot be saved');
        const energy = dev.meterTotals.energyMwh;
        await waitFor(() => dev.meterTotals.energyMwh > energy, 5000, 'the meter advancing');
        sim.setBusy(false);
        await waitFor(() => !dev.isBusy, 5000, 'idle again');
        // the reboot ends the session (its relay comes back off); its event is held by the journal
        sim.reboot();
        await waitFor(() => dev.stats.reboots === 1 && dev.relayState.sensed === false, 15_000, 'the reboot seen');
        expect(store.load('rig-3')).toEqual(saved);
        expect(g.logs.some((l) => l.level === 50 && l.device === 'rig-3' && String(l.msg).includes('could not be saved') && String(l.msg).includes('read-only'))).toBe(true);
      } finally {
        g.journal.db.pragma('query_only = OFF');
      }
      await waitFor(() => store.load('rig-3')!.bootId === sim.truth().bootId, 5000, 'the counters of the new boot saved');
      expect(store.load('rig-3')!.past.map((b) => b.bootId)).toEqual([before.bootId]);
      await g.storage.check(); // what the journal held meanwhile is written
      expect(g.journal.heldWrites).toBe(0);
      expect(events('device.rebooted', 'rig-3')).toHaveLength(1);
      await waitFor(() => events('session.ended', 'scope').length === 1, 10_000, 'session ended');
      const s = events('session.ended', 'scope')[0]!.data as unknown as Usage;
      expect(s.reason).toBe('relay-failed');
      expect(s.energyWh).toBeGreaterThan(0);
    } finally {
      await g.stop();
    }
  });
});

describe('an instrument that cannot be believed', () => {
  it('a telemetry message whose counters jump is set aside, journaled and counted, the next one resumes; a message of an earlier boot is stale', async () => {
    const { secret } = await new MqttCredentials(gw.journal).add('plug-9');
    const plug9 = await connectAsync(gw.broker!.addresses.tcp!, { clientId: 'plug-9', username: 'plug-9', password: secret, reconnectPeriod: 0 });
    try {
      const telemetry = (seq: number, bootId: number, runtimeS: number, energyWh: number) =>
        plug9.publishAsync(T.telemetry('plug-9'), JSON.stringify({ seq, bootId, uptimeS: runtimeS, counters: { runtimeS, samples: seq, energyWh }, busy: false, powerW: 0 }), { qos: 1 });
      await telemetry(1, 7, 100, 1);
      await sleep(1000);
      await telemetry(2, 7, 101, 1.5);
      await telemetry(3, 7, 10_000_000, 3_000_000); // a glitch: months of runtime and 3 MWh at once
      await telemetry(4, 7, 102, 2);
      await telemetry(1, 8, 0, 0); // a reboot
      await telemetry(5, 7, 103, 2.5); // a late message of the boot before
      const plug = instrument('plug-9');
      await waitFor(() => plug.stats.telemetry === 6, 5000, 'all six messages');
      expect(plug.meterTotals).toEqual({ activeS: 102, energyMwh: 2000 });
      expect(plug.stats).toMatchObject({ implausibleReadings: 1, stale: 1, reboots: 1 });
      const [set] = gw.journal.events({ kind: 'meter.implausible', deviceId: 'plug-9' });
      expect(set!.data).toMatchObject({ bootId: 7, seq: 3, reading: { runtimeS: 10_000_000, energyWh: 3_000_000 }, implausible: [{ counter: 'runtimeS' }, { counter: 'activeS' }, { counter: 'energyWh' }] });
      expect(plug.health().detail.implausibleReadings).toBe(1);
    } finally {
      await plug9.endAsync(true);
    }
  });
});

describe('cumulative counters (pure)', () => {
  const counters = (n: number): Counters => ({ runtimeS: n, activeS: n / 2, samples: n, energyWh: n * 0.1 });
  const PHYSICS = instrumentPhysics({ maxPowerW: 3680, maxClockRate: 1.05 });
  /** Messages a thousand seconds apart: counters(n) grows at most a second a second for steps of at most 1,000. */
  const at = (i: number) => i * 1_000_000;
  const apply = (state: CounterState | null, msg: { bootId: number; seq: number; counters: Counters }, i = msg.seq) => applyTelemetry(state, msg, at(i), PHYSICS);

  it('any subset of a boot’s messages, in order, repeated or not, gives the totals of the last one', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(1000), { minLength: 1, maxLength: 40 }), fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), (steps, keep) => {
        // a boot: counters only grow; seq +1 a message
        let acc = 0;
        const msgs = steps.map((d, i) => ({ bootId: 7, seq: i + 1, counters: counters((acc += d)) }));
        const received = msgs.filter((_, i) => keep[i] || i === msgs.length - 1).flatMap((m, i) => (i % 3 === 0 ? [m, m] : [m]));
        let state: CounterState | null = null;
        let lost = 0;
        for (const m of received) {
          const step = apply(state, m);
          if (step.kind === 'delta') lost += step.lost;
          if (step.kind !== 'stale') expect(step.implausible).toEqual([]);
          state = step.state;
        }
        expect(state!.total.energyWh).toBeCloseTo(msgs.at(-1)!.counters.energyWh, 6);
        expect(state!.total.runtimeS).toBe(msgs.at(-1)!.counters.runtimeS);
        expect(lost).toBe(msgs.length - new Set(received.map((m) => m.seq)).size - (received[0]!.seq - 1));
      }),
    );
  });

  it('a reboot closes the old boot at its last counters and counts the new one from zero; a late message of the old boot is stale', () => {
    let s = apply(null, { bootId: 1, seq: 5, counters: counters(10) }).state;
    const r = apply(s, { bootId: 2, seq: 1, counters: counters(3) }, 6);
    expect(r).toMatchObject({ kind: 'reboot', previousBootId: 1 });
    s = r.state;
    expect(s.total.runtimeS).toBe(13);
    expect(s.past).toEqual([{ bootId: 1, last: counters(10) }]);
    // boot 1 at 10, boot 2 at 3, a late boot-1 message, boot 2 at 4: 14, neither boot counted twice
    const late = apply(s, { bootId: 1, seq: 4, counters: counters(8) }, 7);
    expect(late.kind).toBe('stale');
    expect(apply(s, { bootId: 1, seq: 5, counters: counters(10) }, 7).kind).toBe('stale'); // redelivered
    const next = apply(late.state, { bootId: 2, seq: 2, counters: counters(4) }, 8);
    expect(next).toMatchObject({ kind: 'delta', lost: 0, implausible: [] });
    expect(next.state.total.runtimeS).toBe(14);
    expect(apply(s, { bootId: 2, seq: 1, counters: counters(3) }, 8).kind).toBe('stale');
    expect(apply(s, { bootId: 2, seq: 0xffff_ffff, counters: counters(9) }, 8).kind).toBe('stale'); // behind, across the wrap
    expect(apply({ ...s, seq: 0xffff_ffff }, { bootId: 2, seq: 0, counters: counters(4) }, 8)).toMatchObject({ kind: 'delta', lost: 0 });
    expect(NO_COUNTS).toEqual({ runtimeS: 0, activeS: 0, samples: 0, energyWh: 0 });
  });

  it('a counter that goes down or grows faster than physics is set aside, the others count, and the next plausible message resumes from it', () => {
    let s = apply(null, { bootId: 1, seq: 1, counters: counters(100) }, 0).state;
    // ten seconds later: energy down (these counters have no width, they never wrap), active time 10,000 s on
    const odd = applyTelemetry(s, { bootId: 1, seq: 2, counters: { runtimeS: 110, activeS: 10_050, samples: 110, energyWh: 5 } }, 10_000, PHYSICS);
    expect(odd.kind !== 'stale' && odd.implausible.map((i) => i.counter)).toEqual(['activeS', 'energyWh']);
    s = odd.state;
    expect(s.total).toEqual({ runtimeS: 110, activeS: 50, samples: 110, energyWh: 10 });
    expect(s.seq).toBe(2);
    s = applyTelemetry(s, { bootId: 1, seq: 3, counters: { runtimeS: 120, activeS: 60, samples: 120, energyWh: 10.5 } }, 20_000, PHYSICS).state;
    expect(s.total).toEqual({ runtimeS: 120, activeS: 60, samples: 120, energyWh: 10.5 });
    // a burst of telemetry queued while the connection was down: a minute of it passes at once
    for (let k = 1; k <= 12; k++) s = applyTelemetry(s, { bootId: 1, seq: 3 + k, counters: { runtimeS: 120 + 5 * k, activeS: 60, samples: 120, energyWh: 10.5 } }, 20_001, PHYSICS).state;
    expect(s.total.runtimeS).toBe(180);
    expect(INSTRUMENT_TOLERANCE_S).toBe(60);
  });

  it('the last PAST_BOOTS boots are remembered, newest first; an older one is a new boot', () => {
    let s = apply(null, { bootId: 1, seq: 1, counters: counters(1) }).state;
    for (let id = 2; id <= PAST_BOOTS + 2; id++) s = apply(s, { bootId: id, seq: 1, counters: counters(1) }, id).state;
    expect(s.past.map((b) => b.bootId)).toEqual(Array.from({ length: PAST_BOOTS }, (_, i) => PAST_BOOTS + 1 - i));
    expect(apply(s, { bootId: 2, seq: 9, counters: counters(5) }, 20).kind).toBe('stale');
    expect(apply(s, { bootId: 1, seq: 9, counters: counters(5) }, 20)).toMatchObject({ kind: 'reboot', previousBootId: PAST_BOOTS + 2 });
  });

  it('late and repeated messages of past boots, mixed into a boot’s own, count every boot once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.nat(1000), { minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: PAST_BOOTS }),
        fc.array(fc.option(fc.nat()), { minLength: 1, maxLength: 80 }),
        (boots, lateness) => {
          // boot b has id 100 + b; its counters only grow; all its own messages arrive, in order
          const msgs = boots.map((steps, b) => {
            let acc = 0;
            return steps.map((d, i) => ({ bootId: 100 + b, seq: i + 1, counters: counters((acc += d)) }));
          });
          let k = 0;
          // after each message of a boot, perhaps one of any earlier boot's, older or newer than its last accepted one
          const received = msgs.flatMap((own, b) =>
            own.flatMap((m) => {
              const pick = lateness[k++ % lateness.length];
              if (b === 0 || pick === null || pick === undefined) return [m];
              const past = msgs[pick % b]!;
              return [m, past[Math.floor(pick / b) % past.length]!];
            }),
          );
          let state: CounterState | null = null;
          received.forEach((m, i) => (state = apply(state, m, i).state));
          const truth = msgs.reduce((sum, boot) => sum + boot.at(-1)!.counters.runtimeS, 0);
          expect(state!.total.runtimeS).toBe(truth);
          expect(state!.bootId).toBe(100 + boots.length - 1);
        },
      ),
    );
  });

  it('a stored state loads as saved; one stored by an earlier version loads with its last counters, seq and past boots', () => {
    const journal = Journal.open(join(tempDir('instrument-counters'), 'data'));
    try {
      const store = new CounterStore(journal.db);
      const state = apply(apply(null, { bootId: 2, seq: 3, counters: counters(30) }).state, { bootId: 3, seq: 12, counters: counters(4) }, 4).state;
      store.save('rig-9', state, new Date());
      expect(store.load('rig-9')).toEqual(state);
      const updatedAt = '2025-06-01T12:00:00.000Z';
      journal.db
        .prepare('INSERT INTO node_meters (device_id, boot_id, last, total, updated_at) VALUES (?, ?, ?, ?, ?)')
        .run('rig-8', 3, JSON.stringify({ ...counters(4), seq: 12, pastBootIds: [2, 1] }), JSON.stringify(counters(30)), updatedAt);
      const at = Date.parse(updatedAt);
      expect(store.load('rig-8')).toEqual({
        bootId: 3,
        seq: 12,
        tracks: Object.fromEntries(Object.entries(counters(4)).map(([n, value]) => [n, { value, at, creditS: 0 }])),
        total: counters(30),
        seenAt: at,
        past: [
          { bootId: 2, last: null },
          { bootId: 1, last: null },
        ],
      });
    } finally {
      journal.close();
    }
  });
});

describe('configuration of networked instruments', () => {
  const problems = (cfg: unknown) => {
    const r = configSchema.safeParse(cfg);
    return r.success ? [] : formatIssues(r.error.issues);
  };

  it('names the path of every problem', () => {
    expect(
      problems({
        devices: [
          { id: 'plug-1', kind: 'mqtt-instrument' },
          { id: 'reader', kind: 'mqtt-badge-reader', topic: 'lab/reader' },
          { id: 'pins', kind: 'gpio', simulated: true, pins: { relay: 17 } },
        ],
        simulators: [{ kind: 'rig', device: 'reader' }],
        tools: [{ id: 'rig', switch: 'plug-1', meter: 'pins', readers: ['reader'] }],
      }),
    ).toEqual(
      expect.arrayContaining([
        'devices.0.kind: an mqtt-instrument connects to the embedded broker: add an mqtt section',
        'devices.1.url: no url: give the broker (mqtt://host:port), or add an mqtt section to read from the embedded broker',
        'simulators.0.kind: a simulated rig connects to the embedded broker: add an mqtt section',
        'simulators.0.device: "reader" is an mqtt-badge-reader, not an mqtt-instrument',
        'tools.0.meter: "pins" is a gpio, not a metering-node or an mqtt-instrument',
      ]),
    );
    expect(problems({ mqtt: { baseTopic: BASE }, devices: [{ id: 'rig-1', kind: 'mqtt-instrument', model: 'laser' }] })).toEqual([
      'devices.0.model: Invalid option: expected one of "mosquito-rig"|"smart-plug"',
    ]);
    const ok = configSchema.parse({
      mqtt: { baseTopic: BASE },
      devices: [{ id: 'rig-1', kind: 'mqtt-instrument' }, { id: 'reader', kind: 'mqtt-badge-reader', topic: T.badge('reader') }],
      simulators: [{ kind: 'rig', device: 'rig-1' }],
      tools: [{ id: 'rig', switch: 'rig-1', meter: 'rig-1', readers: ['reader'] }],
    });
    expect(ok.devices[0]).toMatchObject({ model: 'mosquito-rig', switchCommand: 'relay', busyAboveW: 5 });
  });
});
