/**
 * The simulated lab in a process of its own (`ovn-gateway sim lab`) and the gateway in another
 * (`ovn-gateway run --no-simulators`), with the same config: the gateway is killed with SIGKILL
 * during a session while the lab's node keeps metering the busy tool, then started again and
 * recovers the session as after any crash. The rig reaches the gateway's broker with
 * credentials the lab made in the journal, across the restart.
 */
import Database from 'better-sqlite3';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../gateway/src/config/schema.js';
import { createLogger } from '../gateway/src/log.js';
import { labControl, startSimulators } from '../simulators/src/lab.js';
import { freePort, GatewayProcess, killCliChildren, runCli, SIM_CLOCK_RATE, tempDir, waitFor, type CliProcess } from './helpers.js';

const ADA = '04A1B2C3';

afterEach(killCliChildren);

/** Types a command on the lab's standard input and waits for the JSON answer that has `key`. */
async function ask(lab: CliProcess, command: string, key: string): Promise<Record<string, unknown>> {
  const from = lab.lines.length;
  lab.stdin.write(`${command}\n`);
  return waitFor(() => lab.lines.slice(from).map((l) => (l.startsWith('{') ? (JSON.parse(l) as Record<string, unknown>) : null)).find((j) => j && key in j), 10_000, `an answer to "${command}"`);
}

describe('ovn-gateway sim lab', () => {
  it('keeps the node metering the busy tool while the gateway is killed; the gateway started again recovers the session', { timeout: 120_000 }, async () => {
    const dir = tempDir('sim-lab');
    const [nodePort, printerPort, mqttPort, httpPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const config = join(dir, 'lab.yaml');
    const reconnect = '{ initialMs: 50, maxMs: 500 }';
    writeFileSync(
      config,
      `gateway: { dataDir: data, checkpointS: 1, log: { format: json } }
simulators:
  - { kind: node, listen: "127.0.0.1:${nodePort}", nodeId: n1, powerW: 200, timeScale: 60 }
  - { kind: printer, listen: "127.0.0.1:${printerPort}" }
  - { kind: rig, device: rig-1, telemetryIntervalMs: 200 }
mqtt: { listen: "127.0.0.1:${mqttPort}", baseTopic: ovn/lab }
devices:
  - { id: n1, kind: metering-node, maxClockRate: ${SIM_CLOCK_RATE}, serial: { path: "socket://127.0.0.1:${nodePort}", reconnect: ${reconnect} } }
  - { id: mk3s, kind: printer, serial: { path: "socket://127.0.0.1:${printerPort}", reconnect: ${reconnect} } }
  - { id: rig-1, kind: mqtt-instrument, model: mosquito-rig }
tools: [{ id: t1, node: n1, idleTimeoutMin: 60, warnBeforeOffS: 0 }]
affiliates: [{ id: ada, name: Ada, badges: [${ADA}], qualifications: [{ tool: t1 }] }]
`,
    );
    const gw = new GatewayProcess(config, join(dir, 'data'), httpPort, ['--no-simulators']);
    /** The journal as another process sees it (WAL lets readers in while the gateway writes). */
    const rows = (sql: string, ...args: string[]) => {
      const db = new Database(join(dir, 'data', 'journal.sqlite'), { readonly: true, fileMustExist: true });
      try {
        return (db.prepare(sql).all(...args) as { data: string }[]).map((r) => JSON.parse(r.data) as Record<string, unknown>);
      } finally {
        db.close();
      }
    };
    const events = (kind: string) => rows('SELECT data FROM events WHERE kind = ? ORDER BY id', kind);
    const lab = runCli(['sim', 'lab', '--config', config]);
    await waitFor(() => lab.lines.some((l) => l.startsWith('simulated lab: n1, printer, rig-1;')), 20_000, 'the lab to start');
    await gw.up();
    expect(gw.output).not.toContain('simulated'); // the simulators are the lab's

    lab.stdin.write(`n1 badge ${ADA}\n`);
    await waitFor(() => events('session.started').length === 1, 10_000, 'the session to start');
    lab.stdin.write('n1 busy on\n');
    await waitFor(() => rows('SELECT data FROM session_checkpoints').some((c) => (c.usage as { durationS: number }).durationS >= 2), 10_000, 'a checkpoint with the busy time in it');

    await gw.kill();
    // the lab lives on: its node keeps its relay on and meters the busy tool, its printer answers
    const before = (await ask(lab, 'n1 truth', 'energyMwh')) as { energyMwh: number; relay: { sensed: boolean } };
    await new Promise((r) => setTimeout(r, 1500));
    const after = (await ask(lab, 'n1 truth', 'energyMwh')) as { energyMwh: number; relay: { sensed: boolean } };
    expect(lab.exitCode).toBeNull();
    expect(after.relay.sensed).toBe(true);
    expect(after.energyMwh).toBeGreaterThan(before.energyMwh);
    expect(await ask(lab, 'printer truth', 'linesExecuted')).toMatchObject({ halted: false });

    await gw.up();
    await waitFor(() => events('session.started').length === 2, 15_000, 'the session to resume');
    const [interrupted] = events('session.ended');
    expect(interrupted).toMatchObject({ affiliateId: 'ada', reason: 'interrupted', lastCheckpointAt: expect.any(String) });
    expect(interrupted!.energyWh as number).toBeGreaterThan(0);
    expect(events('session.started')[1]).toMatchObject({ affiliateId: 'ada', resumedFrom: interrupted!.sessionId });
    expect(((await ask(lab, 'n1 truth', 'energyMwh')) as { relay: { sensed: boolean } }).relay.sensed).toBe(true); // never switched off

    lab.stdin.write('n1 busy off\n');
    lab.stdin.write(`n1 badge ${ADA}\n`);
    await waitFor(() => events('session.ended').length === 2, 10_000, 'the resumed session to end');
    expect(events('session.ended')[1]).toMatchObject({ reason: 'badge-out' });

    expect(await gw.kill('SIGTERM')).toBe(0);
    lab.kill('SIGTERM');
    expect((await once(lab, 'exit'))[0]).toBe(0);
  });

  it('leaves out a rig whose broker has no fixed port, saying why, and takes commands by simulator name', async () => {
    const dir = tempDir('sim-lab');
    const config = configSchema.parse({
      gateway: { dataDir: 'data' },
      simulators: [
        { kind: 'node', listen: `127.0.0.1:${await freePort()}`, nodeId: 'n1' },
        { kind: 'rig', device: 'rig-1' },
      ],
      mqtt: { listen: '127.0.0.1:0', baseTopic: 'ovn/lab' },
      devices: [{ id: 'rig-1', kind: 'mqtt-instrument', model: 'mosquito-rig' }],
    });
    const logged: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (logged.push(chunk.toString()), done()) });
    const lab = await startSimulators({ config, file: join(dir, 'lab.yaml'), baseDir: dir }, createLogger({ level: 'info', format: 'json' }, sink));
    try {
      expect(lab.simulators.map((s) => s.name)).toEqual(['n1']);
      expect(logged.join('')).toContain('simulated rig-1 not started: mqtt.listen (127.0.0.1:0) is a free port chosen at each start');
      const control = labControl(lab.simulators);
      expect(JSON.parse((await control.run('n1 truth'))!)).toMatchObject({ relay: { sensed: false } });
      expect(await control.run('n1 help')).toContain('badge <UID hex>');
      await expect(control.run('n2 truth')).rejects.toThrow('unknown simulator "n2"');
    } finally {
      await lab.stop();
    }
  });

  it('refuses a config without simulators', async () => {
    const dir = tempDir('sim-lab');
    writeFileSync(join(dir, 'gateway.yaml'), 'gateway: { dataDir: data }\n');
    const lab = runCli(['sim', 'lab', '--config', join(dir, 'gateway.yaml')]);
    expect((await once(lab, 'exit'))[0]).toBe(2);
    expect(lab.lines.join('\n')).toContain('gateway.yaml: no simulators to run');
  });
});
