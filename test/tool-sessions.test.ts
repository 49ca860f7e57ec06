/** Badge in, use, badge out: the access decision and the session machine driving a real node link. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { serveTcp, type SimTransport } from '../simulators/src/transports.js';
import { SIM_CLOCK_RATE, startTestGateway, waitFor, type TestGateway } from './helpers.js';

describe('sessions at a tool with a metering node', () => {
  let sim: MeteringNodeSim;
  let transport: SimTransport;
  let gw: TestGateway;
  const kinds = () => gw.journal.events({ deviceId: 'printer' }).map((e) => e.kind);
  const ended = () => gw.journal.events({ kind: 'session.ended' }).map((e) => e.data);

  beforeAll(async () => {
    sim = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 100, powerW: 200, timeScale: 60 });
    transport = await serveTcp(sim, '127.0.0.1', 0);
    gw = await startTestGateway({
      devices: [{ id: 'n1', kind: 'metering-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transport.address } }],
      tools: [{ id: 'printer', node: 'n1', idleTimeoutMin: 60, warnBeforeOffS: 0 }],
      affiliates: [
        { id: 'ada', name: 'Ada', badges: ['04A1B2C3'], qualifications: [{ tool: 'printer' }] },
        { id: 'bo', name: 'Bo', badges: ['0411223344'], qualifications: [{ tool: 'printer' }] },
        { id: 'cy', name: 'Cy', badges: ['DEADBEEF'] },
      ],
    });
    await waitFor(async () => (await gw.health()).devices[0]!.state === 'online');
  });

  afterAll(async () => {
    await gw?.stop();
    await transport?.close();
  });

  it('denies an unknown badge and an unqualified affiliate, with feedback at the tool', async () => {
    sim.badge('AABBCCDD');
    sim.badge('DEADBEEF');
    await waitFor(() => gw.journal.events({ kind: 'access.decision' }).length === 2);
    expect(gw.journal.events({ kind: 'access.decision' }).map((e) => e.data.reason)).toEqual(['unknown-badge', 'not-qualified']);
    await waitFor(() => sim.truth().indications.length === 2);
    expect(sim.truth().indications.map((i) => i.pattern)).toEqual([2, 2]); // denied
    expect(sim.truth().relay.sensed).toBe(false);
  });

  it('badge in switches the relay on and opens a session; badge out while busy is deferred until the tool stops', async () => {
    sim.badge('04A1B2C3');
    await waitFor(() => kinds().includes('session.started'));
    expect(sim.truth().relay.sensed).toBe(true);
    sim.setBusy(true);
    await new Promise((r) => setTimeout(r, 800));
    const tools = (await (await gw.fetch(`${gw.url}/api/tools`)).json()) as { session: { affiliateId: string; energyWh: number } }[];
    expect(tools[0]!.session).toMatchObject({ affiliateId: 'ada' });

    sim.badge('04A1B2C3'); // badge-out while busy
    await waitFor(() => kinds().includes('session.end-deferred'));
    expect(sim.truth().relay.sensed).toBe(true); // never cut while busy
    sim.setBusy(false);
    await waitFor(() => ended().length === 1);
    expect(ended()[0]).toMatchObject({ affiliateId: 'ada', reason: 'badge-out', toolId: 'printer' });
    expect(ended()[0]!.energyWh as number).toBeGreaterThan(0);
    expect(ended()[0]!.activeS as number).toBeGreaterThan(0);
    await waitFor(() => sim.truth().relay.sensed === false);
  });

  it('hands over to another qualified affiliate without switching off', async () => {
    sim.badge('04A1B2C3');
    await waitFor(() => kinds().filter((k) => k === 'session.started').length === 2);
    sim.badge('0411223344');
    await waitFor(() => ended().length === 2);
    expect(ended()[1]).toMatchObject({ affiliateId: 'ada', reason: 'handover' });
    expect(sim.truth().relay.sensed).toBe(true);
    sim.badge('0411223344');
    await waitFor(() => ended().length === 3);
    expect(ended()[2]).toMatchObject({ affiliateId: 'bo', reason: 'badge-out' });
    const sessions = (await (await gw.fetch(`${gw.url}/api/sessions?tool=printer`)).json()) as { affiliateId: string }[];
    expect(sessions.map((s) => s.affiliateId)).toEqual(['bo', 'ada', 'ada']);
  });
});
