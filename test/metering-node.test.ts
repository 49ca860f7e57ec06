/**
 * The walking skeleton end to end: a simulated metering node on a real pseudo-terminal (socat)
 * or a TCP bridge, the real serialport stack, the gateway's driver, journal and HTTP health.
 * Then a node that cannot be believed: replayed frames, spikes, wrapping counters, line noise.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, FRAME_ERRORS, FrameDecoder } from '../firmware-protocol/src/index.js';
import type { MeteringNode } from '../gateway/src/devices/metering-node/driver.js';
import { MeteringNodeSim, type NodeSimOptions } from '../simulators/src/metering-node/node-sim.js';
import { servePty, serveTcp, type SimTransport } from '../simulators/src/transports.js';
import { SIM_CLOCK_RATE, skipWithoutSocat, startTestGateway, tempDir, waitFor, type TestGateway } from './helpers.js';

const transports = [
  { name: 'pseudo-terminal (socat)', skip: skipWithoutSocat, serve: (sim: MeteringNodeSim) => servePty(sim, join(tempDir('pty'), 'ttyNODE0')) },
  { name: 'TCP serial bridge', skip: false, serve: (sim: MeteringNodeSim) => serveTcp(sim, '127.0.0.1', 0) },
];

describe.each(transports)('metering node over a $name', ({ skip, serve }) => {
  let sim: MeteringNodeSim;
  let transport: SimTransport;
  let gw: TestGateway;
  let node: MeteringNode;

  const device = async () => (await gw.health()).devices[0]!;
  const kinds = () => gw.journal.events({ deviceId: 'bench-node' }).map((e) => e.kind);

  beforeAll(async () => {
    if (skip) return;
    // One simulated minute per real second, so counters move in a short test.
    sim = new MeteringNodeSim({ nodeId: 'bench-node', heartbeatS: 1, meterIntervalMs: 200, powerW: 200, timeScale: 60 });
    transport = await serve(sim);
    gw = await startTestGateway({
      devices: [{ id: 'bench-node', kind: 'metering-node', nodeId: 'bench-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transport.address, reconnect: { initialMs: 50, maxMs: 400 } } }],
    });
    node = gw.devices.get('bench-node') as MeteringNode;
  });

  afterAll(async () => {
    await gw?.stop();
    await transport?.close();
  });

  it.skipIf(skip)('comes online after HELLO, and health says so', async () => {
    const d = await waitFor(async () => ((await device()).state === 'online' ? device() : null));
    expect(d.detail.node).toMatchObject({ nodeId: 'bench-node', firmware: 'sim-1.0.0', resetCause: 'power-on', heartbeatS: 1 });
    expect(kinds().slice(0, 2)).toEqual(['device.connected', 'device.hello']);
    const health = await gw.health();
    expect(health).toMatchObject({ version: expect.any(String), uptimeS: expect.any(Number), status: 'ok' });
  });

  it.skipIf(skip)('switches the relay with an acknowledged command and meters exactly what the node reported', async () => {
    await node.setRelay(true, 'session-start');
    expect(sim.truth().relay).toEqual({ requested: true, sensed: true });
    sim.setBusy(true);
    await new Promise((r) => setTimeout(r, 1500));
    sim.setBusy(false);
    await node.setRelay(false, 'session-end');
    sim.sendMeter();
    const truth = await waitFor(async () => {
      const t = sim.truth();
      const meter = (await device()).detail.meter;
      return JSON.stringify(meter) === JSON.stringify(t.reported) ? t : null;
    });
    expect(truth.reported.activeS).toBeGreaterThanOrEqual(60); // 1.5 s at 60× is ~90 simulated seconds
    expect(truth.reported.energyMwh).toBeGreaterThan(3000);
    // The physical truth runs ahead of the last report by less than one meter interval.
    expect(truth.energyMwh - truth.reported.energyMwh).toBeLessThan(200 * 1000 * (0.2 * 60) / 3600 + 1);
  });

  it.skipIf(skip)('counts corrupted frames, recovers by retransmission, and stays online', async () => {
    sim.corrupt(3);
    sim.badge('04A1B2C3');
    const badge = await new Promise<{ uid: string }>((resolve) => node.once('badge', resolve));
    expect(badge.uid).toBe('04A1B2C3');
    const frames = (await device()).detail.frames as { errors: Record<string, number> };
    expect(Object.values(frames.errors).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3);
    expect((await device()).state).toBe('online');
  });

  it.skipIf(skip)('detects a node reboot: counters restart on the node, totals do not', async () => {
    const before = sim.truth().reported;
    sim.reboot('watchdog');
    await waitFor(() => kinds().includes('device.rebooted'));
    const ev = gw.journal.events({ deviceId: 'bench-node', kind: 'device.rebooted' })[0]!;
    expect(ev.data).toMatchObject({ resetCause: 'watchdog', bootId: sim.truth().boots[1]!.bootId });
    await node.setRelay(true, 'session-start');
    await new Promise((r) => setTimeout(r, 600));
    await node.setRelay(false, 'session-end');
    sim.sendMeter();
    await waitFor(async () => JSON.stringify((await device()).detail.meter) === JSON.stringify(sim.truth().reported));
    expect(sim.truth().reported.relayOnS).toBeGreaterThan(before.relayOnS);
  });

  it.skipIf(skip)('warns when the relay contact does not follow the command', async () => {
    sim.setRelayStuck(true);
    await node.setRelay(true, 'session-start');
    // the contact was open before the command too: wait for the node's report of the command
    await waitFor(async () => {
      const relay = (await device()).detail.relay as { requested: boolean; sensed: boolean };
      return relay.requested && relay.sensed === false;
    });
    expect(gw.logs.some((l) => l.msg === 'relay contact does not follow the command')).toBe(true);
    // the node raises "relay failed to close" too, and clears it once the contact follows again
    await waitFor(async () => ((await device()).detail.faults as { code: number }[]).some((f) => f.code === 0x0103));
    sim.setRelayStuck(false);
    await waitFor(async () => ((await device()).detail.faults as unknown[]).length === 0);
    await node.setRelay(false, 'session-end');
  });

  it.skipIf(skip)('catches up, by the next heartbeat, a busy input and a relay whose reports the node gave up on', async () => {
    const busy: boolean[] = [];
    const onBusy = (b: boolean) => busy.push(b);
    node.on('busy', onBusy);
    // every try of the INPUT report falls in the silence: the node drops it (PROTOCOL.md §7)
    await waitFor(() => sim.truth().unacknowledged === 0);
    sim.silence(1400);
    sim.setBusy(true);
    await waitFor(() => node.isBusy, 5000);
    expect(busy).toEqual([true]);
    expect(gw.logs.some((l) => /busy input is on by the heartbeat/.test(String(l.msg)))).toBe(true);
    sim.setBusy(false);
    await waitFor(() => !node.isBusy);
    node.off('busy', onBusy);

    // a contact that closes late, reported in a silence
    sim.setRelayStuck(true);
    await node.setRelay(true, 'session-start');
    await waitFor(() => node.relayState.requested && node.relayState.sensed === false);
    await waitFor(() => sim.truth().unacknowledged === 0); // the fault it raises too
    sim.silence(1400);
    sim.setRelayStuck(false);
    await waitFor(() => node.relayState.sensed === true, 5000);
    expect(gw.logs.some((l) => /relay is on by the heartbeat/.test(String(l.msg)))).toBe(true);
    await node.setRelay(false, 'session-end');
  });

  it.skipIf(skip)('journals faults with the firmware\'s words and shows them in health until cleared', async () => {
    const before = kinds().length;
    sim.fault(0x0101, 3, 'overcurrent 16.2 A');
    await waitFor(async () => ((await device()).detail.faults as unknown[]).length === 1);
    expect((await device()).detail.faults).toEqual([{ code: 0x0101, severity: 3, text: 'overcurrent 16.2 A', since: expect.any(String) }]);
    expect(await device()).toMatchObject({ state: 'fault', reason: 'overcurrent 16.2 A' });
    sim.fault(0x0101, 0, '', false);
    await waitFor(async () => ((await device()).detail.faults as unknown[]).length === 0);
    expect((await device()).state).toBe('online');
    expect(kinds().slice(before).filter((k) => k.startsWith('device.fault'))).toEqual(['device.fault', 'device.fault-cleared']);
  });

  it.skipIf(skip)('goes offline when the node falls silent and comes back when it speaks again', async () => {
    sim.silence(4000);
    await waitFor(async () => (await device()).state === 'offline', 8000);
    expect(gw.journal.events({ deviceId: 'bench-node', kind: 'device.lost' }).at(-1)!.data.reason).toMatch(/no valid frame for 3 s/);
    await waitFor(async () => (await device()).state === 'online', 8000);
  });

  it.skipIf(skip)('goes offline on unplug and online again on replug, journaling each step', { timeout: 45_000 }, async () => {
    await transport.unplug();
    await waitFor(async () => (await device()).state === 'offline');
    await new Promise((r) => setTimeout(r, 300)); // a few failed reopen attempts
    await transport.replug();
    // Reconnect backoff plus the node's next heartbeat; generous, for a loaded CI machine.
    const d = await waitFor(async () => ((await device()).state === 'online' ? device() : null), 20_000);
    expect((d.detail.link as { reconnects: number }).reconnects).toBeGreaterThanOrEqual(1);
    // the node may say HELLO again (its own and the one asked for): what follows the loss counts
    const all = kinds();
    expect(all.slice(all.lastIndexOf('device.lost'), all.lastIndexOf('device.lost') + 3)).toEqual(['device.lost', 'device.reconnected', 'device.hello']);
  });
});

describe('gateway restart next to a running node', () => {
  it('finds the node again at once and neither loses nor repeats its counts', async () => {
    const sim = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 200, powerW: 100, timeScale: 60 });
    const transport = await serveTcp(sim, '127.0.0.1', 0);
    const dataDir = join(tempDir('restart'), 'data');
    const config = { gateway: { dataDir }, devices: [{ id: 'n1', kind: 'metering-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transport.address, reconnect: { initialMs: 50, maxMs: 200 } } }] };
    const meterOf = async (gw: TestGateway) => (await gw.health()).devices[0]!.detail.meter;
    try {
      const gw1 = await startTestGateway(config);
      const node1 = gw1.devices.get('n1') as MeteringNode;
      await waitFor(() => node1.isOnline);
      await node1.setRelay(true, 'session-start');
      await new Promise((r) => setTimeout(r, 800));
      await gw1.stop();

      await new Promise((r) => setTimeout(r, 500)); // the relay stays on, the node keeps counting
      const gw2 = await startTestGateway(config);
      const node2 = gw2.devices.get('n1') as MeteringNode;
      // A frame numbered 0 from the new gateway must not pass for a repeat of the old gateway's frame 0.
      await waitFor(() => node2.isOnline, 1500, 'online within one retransmission window');
      await node2.setRelay(false, 'session-end');
      sim.sendMeter();
      await waitFor(async () => JSON.stringify(await meterOf(gw2)) === JSON.stringify(sim.truth().reported));
      expect(sim.truth().reported.relayOnS).toBeGreaterThan(60);
      await gw2.stop();
    } finally {
      await transport.close();
    }
  });
});

describe('a node in a reboot loop', () => {
  it('is seen booting each time, though every boot numbers its HELLO 0', async () => {
    // A bare node written by hand: only HELLO frames, each boot numbering from 0.
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    // the link connects while the gateway starts
    const connection = once(server, 'connection');
    const gw = await startTestGateway({
      devices: [{ id: 'n2', kind: 'metering-node', serial: { path: `socket://127.0.0.1:${(server.address() as AddressInfo).port}` } }],
    });
    try {
      const [socket] = (await connection) as [Socket];
      const hello = (bootId: number) =>
        socket.write(encodeFrame({ type: 'HELLO', seq: 0, nodeId: 'n2', firmware: '1', protocol: 1, capabilities: 0, resetCause: 2, bootId, heartbeatS: 5 }));
      const hellos = () => gw.journal.events({ deviceId: 'n2', kind: 'device.hello' });
      for (const [i, bootId] of [11, 12, 13].entries()) {
        hello(bootId);
        hello(bootId); // a retransmission: same boot, same seq, acted on once
        await waitFor(() => hellos().length === i + 1);
      }
      await new Promise((r) => setTimeout(r, 100));
      expect(hellos().map((e) => e.data.bootId)).toEqual([11, 12, 13]);
      expect(gw.journal.events({ deviceId: 'n2', kind: 'device.rebooted' }).map((e) => e.data.resetCause)).toEqual(['brown-out', 'brown-out']);
      socket.destroy();
    } finally {
      await gw.stop();
      server.close();
    }
  });
});

// ---- a node that cannot be believed ----

const ADA = '04A1B2C3';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A node behind a TCP serial bridge at a printer billed for community use by active time (2.00 an hour, 15-minute steps), Ada badging in. */
async function lab(sim: Partial<NodeSimOptions> = {}) {
  const node = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 200, powerW: 200, timeScale: 60, ...sim });
  const transport = await serveTcp(node, '127.0.0.1', 0);
  const gw = await startTestGateway({
    devices: [{ id: 'n1', kind: 'metering-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transport.address, reconnect: { initialMs: 50, maxMs: 400 } } }],
    tools: [{ id: 'printer', node: 'n1', idleTimeoutMin: 60, warnBeforeOffS: 0 }],
    billing: {
      currency: 'CAD',
      tools: { printer: { tariffs: { community: { hourlyRate: '2.00', billedTime: 'active', incrementMin: 15, split: { maintenance: 60, infrastructure: 40, payback: 0 } } } } },
    },
    affiliates: [{ id: 'ada', name: 'Ada', badges: [ADA], qualifications: [{ tool: 'printer' }], useType: 'community' }],
  });
  const driver = gw.devices.get('n1') as MeteringNode;
  await waitFor(() => driver.isOnline && driver.relayKnown, 10_000, 'node online');
  await driver.readMeter(); // the gateway meets the node's counters before anything moves them
  const events = (kind: string) => gw.journal.events({ kind, limit: 1000 });
  /** The gateway's totals, once they are the sum of what the node reported over its boots. */
  const settled = () => waitFor(() => JSON.stringify(driver.meterTotal) === JSON.stringify(node.truth().reported) && driver.meterTotal, 10_000, 'totals as reported');
  return { sim: node, gw, driver, events, settled, close: async () => (await gw.stop(), await transport.close()) };
}

describe('a metering node that cannot be believed', () => {
  it('a METER of the previous boot, replayed, is stale: it counts nothing and is no reboot, however often the boots flip (defect 1)', async () => {
    // boot A ran for months before: 3,000,000,000 mWh and 10,000,000 s active when the gateway first met it
    const { sim, driver, events, settled, close } = await lab({ counterStart: { energyMwh: 3_000_000_000, activeS: 10_000_000 } });
    try {
      await driver.setRelay(true, 'session-start');
      sim.setBusy(true);
      await sleep(400);
      sim.setBusy(false);
      await driver.setRelay(false, 'session-end');
      sim.sendMeter();
      await settled();
      sim.reboot('watchdog');
      await waitFor(() => events('device.rebooted').length === 1, 10_000, 'reboot seen');
      sim.sendMeter();
      for (let flip = 0; flip < 5; flip++) {
        expect(sim.replay('METER', 1)).toBe(true); // boot A's last METER, as a TCP bridge's buffer delivers it
        sim.sendMeter();
      }
      await waitFor(() => driver.stats.stale >= 5, 5000, 'replays seen');
      const total = await settled();
      expect(total.energyMwh).toBeLessThan(3_100_000_000);
      expect(total.activeS).toBeLessThan(10_100_000);
      expect(events('device.rebooted')).toHaveLength(1);
      expect(events('meter.implausible')).toEqual([]);
      expect(driver.health().detail.boots).toEqual([
        { bootId: sim.truth().boots[1]!.bootId, last: expect.any(Object) },
        { bootId: sim.truth().boots[0]!.bootId, last: sim.truth().boots[0]!.reported },
      ]);
    } finally {
      await close();
    }
  });

  it('a spike within a session is set aside: journaled with the reading, counted, and the session billed for what was used (defect 2)', async () => {
    const { sim, gw, driver, events, close } = await lab();
    try {
      sim.badge(ADA);
      await waitFor(() => events('session.started').length === 1, 10_000, 'session started');
      sim.setBusy(true);
      await sleep(300);
      // one valid METER: 10,000,000 s more activity and 3 MWh, in a session of seconds
      sim.spike({ activeS: 10_000_000, energyMwh: 3_000_000_000 });
      await waitFor(() => events('meter.implausible').length === 1, 5000, 'the spike journaled');
      sim.setBusy(false);
      sim.badge(ADA);
      await waitFor(() => events('billing.charge').length === 1, 10_000, 'session charged');
      const ended = events('session.ended')[0]!.data as { activeS: number; energyWh: number };
      expect(ended.activeS).toBeLessThan(120);
      expect(ended.energyWh).toBeLessThan(10);
      expect((events('billing.charge')[0]!.data.price as { total: number }).total).toBe(50); // 15 minutes at 2.00 an hour
      const spike = events('meter.implausible')[0]!.data as { reading: Record<string, number>; implausible: { counter: string }[]; text: string };
      expect(spike.implausible.map((i) => i.counter)).toEqual(['energyMwh', 'activeS']);
      expect(spike.reading.activeS).toBeGreaterThanOrEqual(10_000_000);
      expect(spike.text).toMatch(/^implausible meter reading set aside: energyMwh \d+ after \d+, \+\d+ where at most [\d.]+ was possible; activeS /);
      expect(driver.health().detail.implausibleReadings).toBe(1);
      expect(gw.logs.filter((l) => String(l.msg).startsWith('implausible meter reading'))).toHaveLength(1);
    } finally {
      await close();
    }
  });

  it('counts every counter across the wrap of one at 2^32 (defect 3)', async () => {
    // 100 mWh below the wrap when the gateway first meets it
    const { sim, driver, settled, close } = await lab({ counterStart: { energyMwh: 2 ** 32 - 100 } });
    try {
      await driver.setRelay(true, 'session-start');
      sim.setBusy(true);
      await sleep(1000);
      sim.setBusy(false);
      await driver.setRelay(false, 'session-end');
      sim.sendMeter();
      const total = await settled();
      expect(total.energyMwh).toBeGreaterThan(2 ** 32 + 1000);
      expect(total.activeS).toBeGreaterThan(30);
      expect(driver.stats.implausibleReadings).toBe(0);
    } finally {
      await close();
    }
  });

  it('a replayed BADGE is acted on once, whatever came in between, and not at all once its boot is over (defect 5)', async () => {
    const { sim, driver, events, close } = await lab();
    try {
      for (let i = 0; i < 60; i++) sim.sendMeter(); // the node has numbered a while
      sim.badge(ADA);
      await waitFor(() => events('session.started').length === 1, 10_000, 'badge-in');
      await sleep(700); // METERs and heartbeats go by
      const duplicates = driver.stats.duplicates;
      expect(sim.replay('BADGE')).toBe(true);
      sim.sendMeter();
      await waitFor(() => driver.stats.duplicates > duplicates, 5000, 'the replay seen');
      await sleep(500);
      expect(events('access.decision')).toHaveLength(1);
      expect(events('session.ended')).toEqual([]);
      // the node reboots (its relay off ends the session); the badge of the boot before comes again, alone
      sim.reboot('watchdog');
      await waitFor(() => events('session.ended').length === 1, 10_000, 'the session ended by the reboot');
      const stale = driver.stats.stale;
      expect(sim.replay('BADGE', 1)).toBe(true);
      await waitFor(() => driver.stats.stale > stale, 5000, 'the replay seen');
      await sleep(500);
      expect(events('access.decision')).toHaveLength(1);
      expect(events('session.started')).toHaveLength(1);
    } finally {
      await close();
    }
  });
});

describe('noise on the serial link', () => {
  it('10 MB of it: a few log lines, every rejected frame counted (defect 4)', { timeout: 60_000 }, async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const connection = once(server, 'connection');
    const gw = await startTestGateway({ devices: [{ id: 'n9', kind: 'metering-node', serial: { path: `socket://127.0.0.1:${(server.address() as AddressInfo).port}` } }] });
    const noise = Buffer.alloc(10 * 1024 * 1024);
    let x = 0x2545f491; // xorshift32: the same noise at every run
    for (let i = 0; i < noise.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      noise[i] = x & 0xff;
    }
    // what the framer must make of it, decoded here
    const local = new FrameDecoder(() => {});
    local.push(noise);
    const rejected = FRAME_ERRORS.reduce((a, e) => a + local.stats.errors[e], 0);
    expect(rejected).toBeGreaterThan(10_000);
    const frames = () => gw.devices.get('n9')!.health().detail.frames as { bytes: number; errors: Record<string, number> };
    try {
      const [socket] = (await connection) as [Socket];
      socket.write(noise);
      await waitFor(() => frames().bytes >= noise.length, 30_000, 'the noise read');
      expect(frames().errors).toEqual(local.stats.errors);
    } finally {
      await gw.stop(); // the summary of what was held back is logged at stop
      server.close();
    }
    const lines = gw.logs.filter((l) => /^rejected a frame|more frames from the node set aside/.test(String(l.msg)));
    expect(lines.length).toBeLessThanOrEqual(20);
    const held = lines.flatMap((l) => Object.values((l.held ?? {}) as Record<string, number>)).reduce((a, b) => a + b, 0);
    expect(lines.filter((l) => !l.held).length + held).toBe(rejected);
  });
});
