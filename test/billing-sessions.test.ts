/** Billing at the tool: sessions closed through the real node link are charged in the closing transaction; statements, corrections, closed months. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCharges } from '../gateway/src/billing/billing.js';
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { serveTcp, type SimTransport } from '../simulators/src/transports.js';
import { SIM_CLOCK_RATE, startTestGateway, waitFor, type TestGateway } from './helpers.js';

const ADA = '04A1B2C3';
const TOMAS = '0455667788';

describe('billing of sessions', () => {
  let sim: MeteringNodeSim;
  let transport: SimTransport;
  let gw: TestGateway;
  const api = async (path: string, init?: RequestInit) => {
    const res = await gw.fetch(`${gw.url}${path}`, init);
    return { status: res.status, body: (res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text()) as never };
  };
  const post = (path: string, body: unknown) => api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const month = new Date().toISOString().slice(0, 7);

  beforeAll(async () => {
    sim = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 100, powerW: 200, timeScale: 60 });
    transport = await serveTcp(sim, '127.0.0.1', 0);
    gw = await startTestGateway({
      devices: [{ id: 'n1', kind: 'metering-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transport.address } }],
      tools: [{ id: 'printer', node: 'n1', idleTimeoutMin: 60, warnBeforeOffS: 0 }],
      billing: {
        currency: 'CAD',
        technicianRate: '30.00',
        technicians: ['tomas'],
        tools: {
          printer: {
            tariffs: { commercial: { hourlyRate: '6.00', incrementMin: 15, minimumCharge: '2.00' }, project: { hourlyRate: '6.00', cash: false } },
            coOwnership: { coOwners: [{ affiliate: 'ada', contribution: '300.00' }, { affiliate: 'bo', contribution: '100.00' }] },
          },
        },
      },
      affiliates: [
        { id: 'ada', name: 'Ada', badges: [ADA], qualifications: [{ tool: 'printer' }] },
        { id: 'tomas', name: 'Tomas', badges: [TOMAS], qualifications: [{ tool: 'printer' }] },
      ],
    });
    await waitFor(async () => (await gw.health()).devices[0]!.state === 'online');
  });

  afterAll(async () => {
    await gw?.stop();
    await transport?.close();
  });

  it('charges a closed session in the same transaction, with a technician badging in and out during it', async () => {
    sim.badge(ADA);
    await waitFor(() => gw.journal.events({ kind: 'session.started' }).length === 1);
    sim.badge(TOMAS);
    await waitFor(() => gw.journal.events({ kind: 'session.technician' }).length === 1);
    sim.badge(TOMAS);
    await waitFor(() => gw.journal.events({ kind: 'session.technician' }).length === 2);
    sim.badge(ADA);
    await waitFor(() => gw.journal.events({ kind: 'billing.charge' }).length === 1);
    const ended = gw.journal.events({ kind: 'session.ended' })[0]!;
    const charge = gw.journal.events({ kind: 'billing.charge' })[0]!;
    expect(charge.id).toBe(ended.id + 1); // journaled together
    expect(ended.data).toMatchObject({ technicianMin: 1, technicians: ['tomas'] });
    // 15 min minimum increment at 6.00/h = 1.50 → the minimum charge 2.00; technician: 1 min at 30.00/h = 0.50.
    expect(charge.data.price).toEqual({ billedMin: 15, usage: 200, material: 0, technician: 50, total: 250, cash: true });
    // 2.00 split 30/20/50: maintenance 0.60, infrastructure 0.40, payback 1.00 → ada 0.75, bo 0.25.
    expect(charge.data.parts).toEqual([
      { account: 'material', amount: 0 },
      { account: 'technician', amount: 50 },
      { account: 'maintenance', amount: 60 },
      { account: 'infrastructure', amount: 40 },
      { account: 'co-owner', affiliateId: 'ada', amount: 75 },
      { account: 'co-owner', affiliateId: 'bo', amount: 25 },
    ]);
  });

  it('shows the charge in the statement, as JSON and CSV, and the payback progress', async () => {
    const st = await api(`/api/billing/statement?from=${month}`);
    expect(st.status).toBe(200);
    const body = st.body as { sessions: { entries: unknown[]; net: { total: number } }[]; funds: Record<string, number> };
    expect(body.sessions).toHaveLength(1);
    expect(body.sessions[0]!.net.total).toBe(250);
    expect(body.funds).toEqual({ material: 0, technician: 50, maintenance: 60, infrastructure: 40, payback: 100, total: 250 });
    const csv = await api(`/api/billing/statement?from=${month}&format=csv`);
    expect(csv.body as string).toMatch(/^period,session,tool,affiliate,use_type/);
    // usage, material, material_source (none: no print job), technician, total, value
    expect((csv.body as string).split('\n')[1]).toContain(',2.00,0.00,,0.50,2.50,0.00,');
    const payback = (await api('/api/billing/payback')).body as { coOwners: { affiliateId: string; cap: number; paid: number }[] }[];
    expect(payback[0]!.coOwners).toEqual([
      expect.objectContaining({ affiliateId: 'ada', cap: 36000, paid: 75 }),
      expect.objectContaining({ affiliateId: 'bo', cap: 12000, paid: 25 }),
    ]);
  });

  it('corrects a charge with a new event: the statement shows the original, the correction and the net; the running month cannot be closed', async () => {
    const sessionId = gw.journal.events({ kind: 'session.ended' })[0]!.data.sessionId as string;
    expect((await post('/api/billing/corrections', { sessionId, technicianMin: 30 })).status).toBe(400); // no reason
    const c = await post('/api/billing/corrections', { sessionId, technicianMin: 30, reason: 'Tomas helped with the bed levelling for half an hour' });
    expect(c.status).toBe(201);
    expect((c.body as { delta: unknown[] }).delta).toEqual([{ account: 'technician', amount: 1450 }]);
    const st = (await api(`/api/billing/statement?from=${month}`)).body as { sessions: { entries: { kind: string; items: { total: number } }[]; net: { total: number } }[] };
    expect(st.sessions[0]!.entries.map((e) => [e.kind, e.items.total])).toEqual([
      ['charge', 250],
      ['correction', 1450],
    ]);
    expect(st.sessions[0]!.net.total).toBe(1700);

    // the month has not ended: it stays open, and the void lands in it
    expect((await post(`/api/billing/periods/${month}/close`, {})).body).toEqual({ error: 'bad-request', message: `${month} has not ended yet: a month can be closed from the first day of the next (UTC)` });
    const v = await post('/api/billing/corrections', { sessionId, void: true, reason: 'printed for the lab itself' });
    expect(v.status).toBe(201);
    expect((v.body as { period: string }).period).toBe(month);
    expect((v.body as { delta: { amount: number }[] }).delta.reduce((a, p) => a + p.amount, 0)).toBe(-1700);
    const after = (await api(`/api/billing/statement?from=${month}`)).body as { sessions: { net: { total: number } }[] };
    expect(after.sessions[0]!.net.total).toBe(0);
    expect((await post('/api/billing/corrections', { sessionId, void: true, reason: 'again' })).body).toMatchObject({ message: expect.stringContaining('already void') });
    expect(verifyCharges(gw.journal)).toEqual({ checked: 3, mismatches: [] });
  });
});
