/**
 * The gateway against the real metering-node firmware (firmware-protocol/node-firmware) running
 * in simavr behind a pseudo-terminal, and the same scenario against the TypeScript simulator, so
 * the simulator is held to the firmware's behaviour: HELLO, a session from badge to badge with S0
 * energy and busy time, a frame corrupted on the wire, a reset mid-session and the watchdog.
 */
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MeteringNode } from '../gateway/src/devices/metering-node/driver.js';
import { loadScenario, playScenario, type SimControl } from '../simulators/src/control.js';
import { buildFirmware, FIRMWARE_DIR, FirmwareNode, firmwareControl } from '../simulators/src/metering-node/firmware-node.js';
import { nodeControl } from '../simulators/src/metering-node/control.js';
import { MeteringNodeSim, type Truth } from '../simulators/src/metering-node/node-sim.js';
import { servePty } from '../simulators/src/transports.js';
import { freePort, killCliChildren, runCli, skipWithoutSocat, startTestGateway, tempDir, waitFor, type TestGateway } from './helpers.js';

type CommonTruth = Pick<Truth, 'energyMwh' | 'activeS' | 'reported' | 'relay'> & { boots: { bootId: number; resetCause: string }[] };

interface NodeUnderTest {
  address: string;
  control: SimControl;
  truth(): Promise<CommonTruth>;
  close(): Promise<void>;
}

// Without gcc-avr, avr-libc or libsimavr-dev the firmware's half is skipped on a laptop, never in CI.
const built = buildFirmware();
const skipFirmware = 'missing' in built && process.env.CI !== 'true';

const nodes = [
  {
    name: 'the firmware in simavr',
    skip: skipFirmware,
    start: async (): Promise<NodeUnderTest> => {
      if ('missing' in built) throw new Error(built.missing);
      const fw = await FirmwareNode.start({ elf: built.elf, harness: built.harness });
      return { address: fw.address, control: firmwareControl(fw), truth: () => fw.truth(), close: () => fw.close() };
    },
  },
  {
    name: 'the TypeScript simulator',
    skip: skipWithoutSocat,
    start: async (): Promise<NodeUnderTest> => {
      const sim = new MeteringNodeSim({ nodeId: 'mega-node', heartbeatS: 5, meterIntervalMs: 1000 });
      const transport = await servePty(sim, join(tempDir('pty'), 'ttyNODE0'));
      return { address: transport.address, control: nodeControl(sim, transport), truth: async () => sim.truth(), close: () => transport.close() };
    },
  },
];

const ADA = '0A1B2C3D4E';
/** One S0 pulse at 1000 impulses/kWh. */
const PULSE_MWH = 1000;

describe.each(nodes)('a metering node: $name', ({ skip, start }) => {
  let nut: NodeUnderTest;
  let gw: TestGateway;
  let node: MeteringNode;
  const device = async () => (await gw.health()).devices.find((d) => d.id === 'n1')!;
  const events = (kind: string) => gw.journal.events({ kind });
  const meterTotal = async () => (await device()).detail.meter as { energyMwh: number; relayOnS: number; activeS: number; filamentMm: number };
  /** The gateway's totals once they equal what the node reported in its last METER of each boot. */
  const settled = async () => {
    await node.readMeter();
    return waitFor(async () => {
      const [t, total] = [await nut.truth(), await meterTotal()];
      return JSON.stringify(total) === JSON.stringify(t.reported) ? { truth: t, total } : null;
    }, 10_000, 'the gateway to count what the node reported');
  };

  beforeAll(async () => {
    if (skip) return;
    nut = await start();
    gw = await startTestGateway({
      devices: [{ id: 'n1', kind: 'metering-node', nodeId: 'mega-node', serial: { path: nut.address, reconnect: { initialMs: 50, maxMs: 400 } } }],
      tools: [{ id: 'laser', node: 'n1', idleTimeoutMin: 60, warnBeforeOffS: 0 }],
      affiliates: [{ id: 'ada', name: 'Ada', badges: [ADA], qualifications: [{ tool: 'laser' }] }],
    });
    node = gw.devices.get('n1') as MeteringNode;
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await nut?.close();
  });

  it.skipIf(skip)('says HELLO with its capabilities and comes online', async () => {
    const d = await waitFor(async () => ((await device()).state === 'online' ? device() : null));
    expect(d.detail.node).toMatchObject({ nodeId: 'mega-node', protocol: 1, resetCause: 'power-on', heartbeatS: 5 });
    expect((d.detail.node as { capabilities: string[] }).capabilities).toEqual(['badge_reader', 'relay', 'relay_sense', 'energy_meter', 'busy_input', 'indicator']);
    expect((d.detail.node as { bootId: number }).bootId).toBe((await nut.truth()).boots[0]!.bootId);
  });

  it.skipIf(skip)('badge in switches the relay on for a session; S0 energy and busy time are counted; badge out ends it', async () => {
    const played = playScenario(nut.control, loadScenario(join(FIRMWARE_DIR, 'scenario.yaml')), () => {});
    await waitFor(() => events('session.started').length === 1, 10_000, 'session.started');
    await waitFor(async () => (await nut.truth()).relay.sensed, 5000, 'the relay contact to close');
    await played;
    await waitFor(() => events('session.ended').length === 1, 10_000, 'session.ended');
    expect((await nut.truth()).relay).toEqual({ requested: false, sensed: false });
    const { truth, total } = await settled();
    // about 7.5 s with the relay closed at 3600 W while busy: energy within one S0 pulse of the truth
    expect(truth.energyMwh).toBeGreaterThan(4 * PULSE_MWH);
    expect(Math.abs(truth.energyMwh - total.energyMwh)).toBeLessThanOrEqual(PULSE_MWH);
    expect(total.activeS).toBeGreaterThanOrEqual(Math.floor(truth.activeS) - 1);
    expect(total.activeS).toBeLessThanOrEqual(Math.ceil(truth.activeS));
    expect(truth.activeS).toBeGreaterThan(4);
    const ended = events('session.ended')[0]!.data;
    expect(ended).toMatchObject({ affiliateId: 'ada', toolId: 'laser', reason: 'badge-out' });
    expect(ended.activeS as number).toBeGreaterThanOrEqual(4);
    expect(ended.energyWh as number).toBeGreaterThan(3);
  });

  it.skipIf(skip)('a frame corrupted on the wire is dropped and the badge arrives once, retransmitted', async () => {
    const errors = async () => Object.values(((await device()).detail.frames as { errors: Record<string, number> }).errors).reduce((a, b) => a + b, 0);
    const before = await errors();
    const decisions = events('access.decision').length;
    await nut.control.run('corrupt 2');
    await nut.control.run('badge 0102030405');
    await waitFor(() => events('access.decision').length === decisions + 1, 10_000, 'the access decision');
    await waitFor(async () => (await errors()) >= before + 2, 10_000, 'two rejected frames');
    expect(events('access.decision').slice(decisions).map((e) => e.data.reason)).toEqual(['unknown-badge']);
    expect((await device()).state).toBe('online');
  });

  it.skipIf(skip)('an ACK lost on the wire: the gateway sends the command again, the node acknowledges it again and acts once', async () => {
    const states: number[] = [];
    const onRelay = (r: { requested: boolean; reason: number }) => r.requested && states.push(r.reason);
    const nextMeter = () => new Promise((resolve) => node.once('meter', resolve));
    node.on('relay', onRelay);
    try {
      const retransmits = node.stats.retransmits;
      await nut.control.run('lose-ack 1');
      await node.setRelay(true, 'maintainer');
      expect(node.stats.retransmits).toBe(retransmits + 1);
      // the node meters every second while the relay is on: two METERs on, a second action would have been reported
      await nextMeter();
      await nextMeter();
      expect(states).toEqual([4]); // one RELAY_STATE, reason maintainer
      await node.setRelay(false, 'maintainer');
    } finally {
      node.off('relay', onRelay);
    }
  });

  it.skipIf(skip)('a relay contact that does not follow the coil raises a fault, cleared once it follows again', async () => {
    const faults: { code: string; active: boolean }[] = [];
    const onFault = (f: { code: string; active: boolean }) => faults.push({ code: f.code, active: f.active });
    node.on('fault', onFault);
    try {
      // the contact sticks where it is: open, as the test before left it once the node saw it open
      await waitFor(async () => !(await nut.truth()).relay.sensed && node.relayState.sensed === false, 10_000, 'the contact open before it sticks');
      await nut.control.run('relay-stuck on');
      await node.setRelay(true, 'maintainer');
      await waitFor(() => faults.length === 1, 5000, 'FAULT relay failed to close');
      await nut.control.run('relay-stuck off');
      await waitFor(() => faults.length === 2, 5000, 'the fault cleared');
      expect(faults).toEqual([
        { code: String(0x0103), active: true },
        { code: String(0x0103), active: false },
      ]);
      await waitFor(() => node.relayState.sensed === true, 5000, 'the contact closed');
      await node.setRelay(false, 'maintainer');
      await waitFor(async () => !(await nut.truth()).relay.sensed, 5000, 'the contact open');
    } finally {
      node.off('fault', onFault);
    }
  });

  it.skipIf(skip)('a reset mid-session starts a new boot; nothing counted is lost or counted twice', async () => {
    await nut.control.run(`badge ${ADA}`);
    await waitFor(() => events('session.started').length === 2, 10_000, 'the second session');
    await nut.control.run('busy on');
    await new Promise((r) => setTimeout(r, 2500)); // the tool runs
    const before = await settled();
    const rebooted = events('device.rebooted').length;
    await nut.control.run('reboot external');
    await waitFor(() => events('device.rebooted').length === rebooted + 1, 10_000, 'device.rebooted');
    expect(events('device.rebooted').at(-1)!.data).toMatchObject({ resetCause: 'external', previousBootId: before.truth.boots.at(-1)!.bootId });
    await nut.control.run('busy off');
    const after = await settled();
    expect(after.truth.boots.length).toBe(before.truth.boots.length + 1);
    expect(after.truth.boots.at(-1)!.resetCause).toBe('external');
    // the gateway's totals are the sum of each boot's last report: nothing lost, nothing doubled
    expect(after.total.energyMwh).toBeGreaterThanOrEqual(before.total.energyMwh);
    expect(Math.abs(after.truth.energyMwh - after.total.energyMwh)).toBeLessThanOrEqual(PULSE_MWH);
  });

  it.skipIf(skip)('the watchdog resets a node whose main loop is stuck, and the next HELLO says so', async () => {
    const rebooted = events('device.rebooted').length;
    await nut.control.run('reboot watchdog');
    await waitFor(() => events('device.rebooted').length === rebooted + 1, 15_000, 'device.rebooted');
    expect(events('device.rebooted').at(-1)!.data).toMatchObject({ resetCause: 'watchdog' });
    await waitFor(async () => (await device()).state === 'online' && (await device()).detail.node, 10_000);
    expect(((await device()).detail.node as { resetCause: string }).resetCause).toBe('watchdog');
  });
});

describe('the simulated lab with a node running the firmware', () => {
  it.skipIf(skipFirmware)('serves the firmware over TCP like a serial bridge; the gateway meets it and the lab drives it', async () => {
    if ('missing' in built) throw new Error(built.missing);
    const port = await freePort();
    const gw = await startTestGateway({
      simulators: [{ kind: 'node', listen: `127.0.0.1:${port}`, firmware: built.elf, powerW: 3600 }],
      devices: [{ id: 'n1', kind: 'metering-node', serial: { path: `socket://127.0.0.1:${port}` } }],
    });
    try {
      const d = await waitFor(async () => ((await gw.health()).devices[0]!.state === 'online' ? (await gw.health()).devices[0]! : null), 10_000, 'the node online');
      expect(d.detail.node).toMatchObject({ nodeId: 'mega-node', firmware: '1.0.0', resetCause: 'power-on' });
      const node = gw.simulators.find((s) => s.name === 'sim-node')!;
      const busy = new Promise<void>((resolve) => (gw.devices.get('n1') as MeteringNode).on('busy', (b) => b && resolve()));
      await node.control.run('busy on');
      await busy;
      expect((gw.devices.get('n1') as MeteringNode).isBusy).toBe(true);
    } finally {
      await gw.stop();
    }
  });
});

describe('ovn-gateway sim node --firmware', () => {
  afterEach(killCliChildren);

  it.skipIf(skipFirmware)('links the firmware\'s pseudo-terminal at --pty, takes the harness\'s commands on stdin and removes the link on SIGTERM', async () => {
    if ('missing' in built) throw new Error(built.missing);
    const link = join(tempDir('fw-cli'), 'ttyNODE0');
    const sim = runCli(['sim', 'node', '--firmware', built.elf, '--pty', link]);
    await waitFor(() => sim.lines.some((l) => l.includes(`in simavr at ${link}`)), 15_000, 'the firmware started');
    expect(existsSync(link)).toBe(true);
    sim.stdin.write('busy maybe\n');
    sim.stdin.write('truth\n');
    const truthLine = await waitFor(() => sim.lines.find((l) => l.startsWith('{')), 10_000, 'the truth');
    expect(JSON.parse(truthLine)).toMatchObject({ boots: [{ resetCause: 'power-on' }], relay: { requested: false, sensed: false } });
    expect(sim.lines.some((l) => l.includes('busy: expected on or off'))).toBe(true);
    sim.kill('SIGTERM');
    expect((await once(sim, 'exit'))[0]).toBe(0);
    expect(existsSync(link)).toBe(false);
  });
});
