/**
 * `ovn-gateway sim rig` as a real process (mqtt.js) against the embedded broker with a
 * device's own credentials: its telemetry validated by the broker, commands with replies,
 * the fault injection typed on its standard input, its ground truth, and its last will.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { EmbeddedBroker } from '../gateway/src/mqtt/broker.js';
import { brokerSchema } from '../gateway/src/mqtt/config.js';
import { MqttCredentials } from '../gateway/src/mqtt/credentials.js';
import type { Availability, Status, Telemetry } from '../gateway/src/mqtt/schemas.js';
import type { RigTruth } from '../simulators/src/rig/rig-sim.js';
import { tempDir, waitFor } from './helpers.js';

const BASE = 'ovn/rig-sim-test';
const cli = join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js');
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('ovn-gateway sim rig', () => {
  it('publishes valid telemetry, obeys commands with replies, loses what it is told to, reboots, and leaves its will', { timeout: 60_000 }, async () => {
    const dir = tempDir('rig-sim');
    const journal = Journal.open(dir);
    cleanups.push(() => journal.close());
    const { secret } = await new MqttCredentials(journal).add('rig-9');
    const silent = new Writable({ write: (_c, _e, done) => done() });
    const broker = new EmbeddedBroker(brokerSchema.parse({ listen: '127.0.0.1:0', baseTopic: BASE, connectionsPerMinute: 1000 }), journal, createLogger({ level: 'warn', format: 'json' }, silent));
    await broker.start();
    cleanups.push(() => broker.stop());
    const telemetry: Telemetry[] = [];
    const statuses: Status[] = [];
    const availability: Availability[] = [];
    broker.on('telemetry', (id, t) => id === 'rig-9' && telemetry.push(t));
    broker.on('status', (id, s) => id === 'rig-9' && statuses.push(s));
    broker.on('availability', (id, a) => id === 'rig-9' && availability.push(a));

    const child: ChildProcessWithoutNullStreams = spawn(
      process.execPath,
      [cli, 'sim', 'rig', '--url', broker.addresses.tcp!, '--device', 'rig-9', '--base-topic', BASE, '--interval', '100', '--time-scale', '60', '--power', '600'],
      { env: { ...process.env, OVN_RIG_SECRET: secret }, stdio: 'pipe' },
    );
    cleanups.push(() => child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const type = (line: string) => child.stdin.write(line + '\n');
    const truth = async (): Promise<RigTruth> => {
      const from = stdout.length;
      type('truth');
      const line = await waitFor(() => stdout.slice(from).split('\n').find((l) => l.startsWith('{')), 10_000, 'truth printed');
      return JSON.parse(line) as RigTruth;
    };

    await waitFor(() => telemetry.length >= 3, 20_000, `telemetry from the simulator (stderr: ${stderr})`);
    expect(statuses[0]).toMatchObject({ state: 'online' });
    expect(broker.health().rejected.invalid).toBe(0);
    const first = telemetry[0]!;
    expect(first.counters).toMatchObject({ runtimeS: 0, energyWh: 0 }); // off: nothing counts
    expect(telemetry[1]!.seq).toBe(first.seq + 1);

    // switched on by command: the reply carries the transaction back, the telemetry says so
    const reply = await broker.command('rig-9', { command: 'relay', on: true });
    expect(reply.ok).toBe(true);
    type('busy on');
    await waitFor(() => telemetry.at(-1)!.busy && telemetry.at(-1)!.counters.energyWh > 0, 10_000, 'busy and counting');
    expect(telemetry.at(-1)!.relay).toBe(true);

    // told to lose five messages: a gap of five in seq, and the counters still only grow
    const n = telemetry.length;
    type('drop 5');
    await waitFor(() => telemetry.length >= n + 3, 10_000, 'telemetry after the drop');
    const seqs = telemetry.slice(n - 1).map((t) => t.seq);
    expect(seqs.some((s, i) => i > 0 && s - seqs[i - 1]! === 6)).toBe(true);
    const t1 = await truth();
    expect(t1.telemetry.dropped).toBe(5);
    expect(t1.relay).toBe(true);
    // the truth is ahead of the last report by at most an interval at 600 W
    const reported = telemetry.at(-1)!.counters.energyWh;
    expect(t1.total.energyWh).toBeGreaterThanOrEqual(reported);
    expect(t1.total.energyWh - reported).toBeLessThan((600 * 60 * 0.5) / 3600);

    // a reboot: new boot id, seq and counters from zero, relay off; the old connection's will is stale
    const bootId = telemetry.at(-1)!.bootId;
    type('reboot');
    await waitFor(() => telemetry.at(-1)!.bootId !== bootId, 10_000, 'telemetry of the new boot');
    const rebooted = telemetry.find((t) => t.bootId !== bootId)!;
    expect(rebooted.seq).toBe(1);
    expect(rebooted.relay).toBe(false);
    expect(rebooted.counters.energyWh).toBe(0);
    expect((await truth()).boots).toBe(2);

    // killed: the broker publishes its will, and the device is offline
    const sessions = statuses.filter((s) => s.state === 'online').map((s) => s.session!);
    expect(new Set(sessions).size).toBe(sessions.length); // a new session number at each connection
    child.kill('SIGKILL');
    await waitFor(() => availability.at(-1)?.state === 'offline', 10_000, 'offline after the kill');
    await waitFor(() => statuses.at(-1)?.state === 'offline', 10_000, 'the will');
    expect(statuses.at(-1)!.session).toBe(sessions.at(-1));
  });
});
