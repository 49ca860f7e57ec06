/** The API's resources with a real session at a simulated node: live cost, sessions, statements, corrections, maintenance, affiliates; each role sees what it may. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers.js';
import { ADA, BO, startApiLab, type ApiLab } from './api-lab.js';

const month = new Date().toISOString().slice(0, 7);
const lastMonth = new Date(Date.UTC(Number(month.slice(0, 4)), Number(month.slice(5, 7)) - 2, 1)).toISOString().slice(0, 7);

describe('API resources', () => {
  let lab: ApiLab;
  beforeAll(async () => {
    lab = await startApiLab();
  });
  afterAll(async () => lab?.stop());

  it('shows a running session with its cost so far to its affiliate and the staff, only its start to another affiliate', async () => {
    expect((await lab.call('GET', '/api/maintenance', 'maintainer')).body[0].runHours).toBe(0); // counted from here on as sessions end
    lab.sim.badge(ADA);
    await waitFor(() => lab.gw.journal.events({ kind: 'session.started' }).length === 1);
    lab.sim.setBusy(true);
    const live = await waitFor(async () => {
      const l = (await lab.call('GET', '/api/sessions/live', 'affiliate')).body as { sessionId: string; activeS: number }[];
      return l[0] && l[0].activeS > 0 && l;
    });
    expect(live).toEqual([
      {
        sessionId: expect.any(String),
        toolId: 'printer',
        affiliateId: 'ada',
        useType: 'commercial',
        startedAt: expect.any(String),
        elapsedS: expect.any(Number),
        activeS: expect.any(Number),
        energyWh: expect.any(Number),
        filamentG: 0,
        material: null, // no print job
        // under 15 minutes at 6.00/h: the minimum charge, split 30/20/50 with the payback pro rata 3:1
        cost: { total: '2.00', currency: 'EUR', cash: true, parts: { material: '0.00', maintenance: '0.60', infrastructure: '0.40', payback: '1.00', technician: '0.00' } },
      },
    ]);
    expect((await lab.call('GET', '/api/sessions/live', 'bo')).body).toEqual([]);
    expect((await lab.call('GET', '/api/sessions/live', 'custodian')).body).toHaveLength(1);

    const forBo = (await lab.call('GET', '/api/tools/printer', 'bo')).body;
    expect(forBo).toMatchObject({ inUse: true, online: true, relayOn: true, session: { sessionId: live[0]!.sessionId, toolId: 'printer', startedAt: expect.any(String) } });
    expect(forBo.session).not.toHaveProperty('affiliateId');
    expect(forBo.session).not.toHaveProperty('cost');
    const forAda = (await lab.call('GET', '/api/tools/printer', 'affiliate')).body;
    expect(forAda.session).toMatchObject({ affiliateId: 'ada', cost: { total: '2.00' } });
    expect((await lab.call('GET', '/api/tools', 'maintainer')).body[0].session).toMatchObject({ affiliateId: 'ada', durationS: expect.any(Number) });
  });

  it("lets an affiliate change their own session's use type to a self-service one only, not someone else's; staff change it to any", async () => {
    expect((await lab.call('PUT', '/api/tools/printer/session/use-type', 'bo', { useType: 'community' })).status).toBe(403);
    const free = await lab.call('PUT', '/api/tools/printer/session/use-type', 'affiliate', { useType: 'project' });
    expect(free.status).toBe(403);
    expect(free.body).toEqual({ error: 'not-self-service', message: '"project" use is a custodian\'s decision: ask one to change your session to it (you may choose community)' });
    expect((await lab.call('GET', '/api/sessions/live', 'affiliate')).body[0]).toMatchObject({ useType: 'commercial', cost: { cash: true } });
    const own = await lab.call('PUT', '/api/tools/printer/session/use-type', 'affiliate', { useType: 'community' });
    expect(own.status).toBe(200);
    expect(lab.gw.journal.latest('session.use-type', 'printer')!.data).toMatchObject({ useType: 'community', by: 'ada-phone' });
    expect((await lab.call('PUT', '/api/tools/printer/session/use-type', 'custodian', { useType: 'project' })).status).toBe(200);
    expect((await lab.call('GET', '/api/sessions/live', 'affiliate')).body[0].cost).toMatchObject({ cash: false });
    expect((await lab.call('PUT', '/api/tools/printer/session/use-type', 'admin', { useType: 'nonsense' })).body).toMatchObject({ error: 'bad-request', message: expect.stringContaining('unknown use type') });
    await lab.call('PUT', '/api/tools/printer/session/use-type', 'admin', { useType: 'commercial' });
  });

  it('lists ended and running sessions with their charge; an affiliate sees only their own', async () => {
    const list = async () => ((await lab.call('GET', '/api/sessions', 'custodian')).body as { affiliateId: string; endedAt: string | null; charge: unknown }[]).map((s) => [s.affiliateId, s.endedAt === null, s.charge]);
    expect(await list()).toEqual([['ada', true, null]]);
    lab.sim.setBusy(false);
    lab.sim.badge(ADA);
    await waitFor(() => lab.gw.journal.events({ kind: 'billing.charge' }).length === 1);
    // Bo's session is stopped the moment it starts (on the event, not a poll), so that even a
    // loaded machine stops it within the tenth of a second that is billed as no time at all
    const started = new Promise<void>((resolve) => {
      const off = lab.gw.journal.afterCommit((e) => e.kind === 'session.started' && (off(), resolve()));
    });
    lab.sim.badge(BO);
    await started;
    const stopped = await lab.call('POST', '/api/tools/printer/session/stop', 'maintainer', {});
    expect(stopped.body).toMatchObject({ affiliateId: 'bo' });
    await waitFor(() => lab.gw.journal.events({ kind: 'billing.charge' }).length === 2);
    expect(await list()).toEqual([
      ['bo', false, { total: '0.00', currency: 'EUR' }],
      ['ada', false, { total: '2.00', currency: 'EUR' }],
    ]);
    expect(((await lab.call('GET', '/api/sessions?affiliate=bo', 'affiliate')).body as { affiliateId: string }[]).map((s) => s.affiliateId)).toEqual(['ada']);
    expect((await lab.call('GET', '/api/sessions?affiliate=bo', 'custodian')).body).toHaveLength(1);
    expect((await lab.call('GET', '/api/sessions?useType=project', 'custodian')).body).toEqual([]);
    expect((await lab.call('GET', '/api/sessions?tool=printer&from=2020-01-01', 'admin')).body).toHaveLength(2); // ended ones only
    expect((await lab.call('GET', '/api/sessions?to=2020-01-01', 'admin')).body).toEqual([]);
  });

  it("gives an affiliate their own statement only, the custodian everyone's, as JSON and CSV", async () => {
    const own = (await lab.call('GET', `/api/billing/statement?from=${month}&affiliate=bo`, 'affiliate')).body;
    expect(own).toMatchObject({ affiliate: 'ada', currency: 'EUR' });
    expect(own.sessions.map((s: { affiliateId: string }) => s.affiliateId)).toEqual(['ada']);
    const everyone = (await lab.call('GET', `/api/billing/statement?from=${month}`, 'custodian')).body;
    expect(everyone.sessions).toHaveLength(2);
    expect(everyone.funds.total).toBe(200);
    const csv = await lab.call('GET', `/api/billing/statement?from=${month}&format=csv`, 'admin');
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    expect(csv.text.split('\n').filter(Boolean)).toHaveLength(3);
  });

  it("corrects a charge with the token's name as who did it, and closes a month that has ended, not this one", async () => {
    const sessionId = (await lab.call('GET', '/api/sessions?affiliate=bo', 'custodian')).body[0].sessionId as string;
    // a short session is one 15-minute increment: technician time up to twice that, filament up to 10 kg
    for (const [change, field] of [[{ technicianMin: 100_000_000_000 }, 'technicianMin'], [{ technicianMin: 31 }, 'technicianMin'], [{ filamentG: 10_001 }, 'filamentG']] as const) {
      const refused = await lab.call('POST', '/api/billing/corrections', 'custodian', { sessionId, ...change, reason: 'typo' });
      expect(refused.status).toBe(400);
      expect(refused.body.message).toMatch(new RegExp(`^${field}: .*billing\\.corrections\\.`));
    }
    const c = await lab.call('POST', '/api/billing/corrections', 'custodian', { sessionId, technicianMin: 30, reason: 'helped with the bed levelling' });
    expect(c.status, c.text).toBe(201);
    expect(c.body).toMatchObject({ by: 'carla', reason: 'helped with the bed levelling' });
    expect((await lab.call('GET', '/api/sessions?affiliate=bo', 'custodian')).body[0].charge).toEqual({ total: '15.00', currency: 'EUR' }); // 30 min at 30.00/h
    expect(lab.gw.journal.latest('api.action', null)!.data).toMatchObject({ method: 'POST', route: '/api/billing/corrections', status: 201, tokenId: expect.stringMatching(/^[0-9a-f]{12}$/), name: 'carla', role: 'custodian' });
    expect((await lab.call('POST', `/api/billing/periods/${month}/close`, 'admin')).body).toEqual({ error: 'bad-request', message: `${month} has not ended yet: a month can be closed from the first day of the next (UTC)` });
    const closed = await lab.call('POST', `/api/billing/periods/${lastMonth}/close`, 'admin');
    expect(closed.body, closed.text).toEqual({ closedPeriods: [lastMonth], invoices: [] }); // the sessions are this month's: nothing to invoice last month
    expect(lab.gw.journal.latest('billing.period-closed', null)!.data).toMatchObject({ period: lastMonth, by: 'root' });
  });

  it('reports co-owner payback progress to everyone', async () => {
    const payback = (await lab.call('GET', '/api/billing/payback', 'affiliate')).body;
    expect(payback).toEqual([expect.objectContaining({ toolId: 'printer', pooled: false, coOwners: [expect.objectContaining({ affiliateId: 'ada', contribution: 30000, cap: 36000 }), expect.objectContaining({ affiliateId: 'bo' })] })]);
    expect(payback[0].paid).toBe(100); // half of Ada's 2.00, 0.75 to ada and 0.25 to bo
  });

  it('refuses bad requests with 400 naming the field', async () => {
    const cases: [string, string, unknown, RegExp][] = [
      ['GET', '/api/billing/statement?from=June', undefined, /^query\.from: a month YYYY-MM/],
      ['GET', `/api/billing/statement?from=${month}&format=pdf`, undefined, /^query\.format: /],
      ['GET', '/api/sessions?limit=0', undefined, /^query\.limit: /],
      ['POST', '/api/billing/corrections', { sessionId: 'x', void: true }, /^body\.reason: /],
      ['POST', '/api/billing/corrections', { sessionId: 'x', reason: 'r', void: true, filamentG: 2 }, /give exactly one change/],
      ['POST', '/api/tools/printer/status', { status: 'broken' }, /^body\.status: /],
      ['POST', '/api/maintenance/printer/service', { note: '' }, /^body\.note: say what was done/],
      ['PUT', '/api/affiliates/eve', { name: 'Eve', badges: ['nothex'] }, /^body\.badges\.0: /],
      ['GET', '/api/billing/statement?from=2026-05&to=2026-04', undefined, /^query\.to: the last month comes before the first/],
      ['PUT', '/api/affiliates/eve', { name: 'E'.repeat(900_000) }, /^body\.name: at most 200 characters$/],
      ['PUT', '/api/affiliates/eve', { name: 'Eve', badges: Array.from({ length: 33 }, (_, i) => `0E${i.toString(16).padStart(6, '0')}`) }, /^body\.badges: at most 32 badges$/],
      ['PUT', '/api/affiliates/eve', { name: 'Eve\u001b[2J' }, /^body\.name: control characters and bidirectional overrides are not allowed/],
      ['PUT', '/api/affiliates/eve', { name: 'Eve\u202egnp.exe' }, /^body\.name: control characters/],
      ['POST', '/api/billing/corrections', { sessionId: 'x', reason: 'custodian (approved)\u0000\u202e\u001b[31m', void: true }, /^body\.reason: control characters/],
      ['POST', '/api/maintenance/printer/service', { note: 'fan \u001b]0;owned\u0007' }, /^body\.note: control characters/],
      ['POST', '/api/tools/printer/status', { status: 'blocked', reason: 'belt', by: 'custodian (approved)' }, /^body: Unrecognized key: "by"/],
      ['GET', `/api/sessions?tool=${'t'.repeat(65)}`, undefined, /^query\.tool: at most 64 characters/],
    ];
    for (const [method, url, body, message] of cases) {
      const res = await lab.call(method, url, 'admin', body);
      expect(res.status, url).toBe(400);
      expect(res.body.error).toBe('bad-request');
      expect(res.body.message).toMatch(message);
    }
    expect((await lab.call('GET', '/api/tools/laser', 'admin')).body).toEqual({ error: 'unknown-tool', message: 'no tool "laser" (known: printer)' });
    expect((await lab.call('GET', '/api/nothing', 'admin')).body).toEqual({ error: 'not-found', message: 'no route GET /api/nothing' });
    // a reason or a note may have line breaks; a name may not
    expect((await lab.call('POST', '/api/maintenance/printer/service', 'maintainer', { note: 'belt tensioned\nnozzle cleaned' })).status).toBe(201);
    expect((await lab.call('PUT', '/api/affiliates/eve', 'admin', { name: 'Eve\nMallory' })).body.message).toMatch(/^body\.name: .*nor line breaks$/);
  });

  it('counts run hours to the next service, logs services and resets the counter', async () => {
    const before = (await lab.call('GET', '/api/maintenance', 'maintainer')).body[0];
    expect(before).toMatchObject({ toolId: 'printer', serviceEveryH: 100, due: false });
    // the busy time of the sessions so far
    const activeS = lab.gw.journal.events({ kind: 'session.ended' }).reduce((a, e) => a + (e.data.activeS as number), 0);
    expect(activeS).toBeGreaterThan(0);
    expect(before.runHours).toBeCloseTo(activeS / 3600, 4);
    expect(before.dueInH).toBeCloseTo(100 - before.runHours, 4);
    const logged = await lab.call('POST', '/api/maintenance/printer/service', 'maintainer', { note: 'new nozzle', resetRunHours: true });
    expect(logged.status).toBe(201);
    expect(logged.body).toMatchObject({ runHours: 0, dueInH: 100, lastService: { by: 'mo', note: 'new nozzle' } });
    await lab.call('POST', '/api/tools/printer/status', 'maintainer', { status: 'blocked', reason: 'belt loose' });
    expect((await lab.call('GET', '/api/tools/printer', 'affiliate')).body).toMatchObject({ status: 'blocked', statusReason: 'belt loose', statusBy: 'mo' });
    const log = (await lab.call('GET', '/api/maintenance/log?tool=printer', 'admin')).body;
    expect(log.slice(0, 2)).toMatchObject([
      { kind: 'status', status: 'blocked', note: 'belt loose', by: 'mo' },
      { kind: 'service', note: 'new nozzle', resetRunHours: true, runHours: before.runHours },
    ]);
    await lab.call('POST', '/api/tools/printer/status', 'maintainer', { status: 'available' });
    expect((await lab.call('GET', '/api/maintenance/log?tool=lathe', 'admin')).status).toBe(404);
  });

  it('manages affiliates and qualifications for the custodian', async () => {
    const saved = await lab.call('PUT', '/api/affiliates/cy', 'custodian', { name: 'Cy', badges: ['0A0B0C0D'] });
    expect(saved.body).toMatchObject({ id: 'cy', name: 'Cy', status: 'active', badges: ['0A0B0C0D'], qualifications: [] });
    expect((await lab.call('PUT', '/api/affiliates/dee', 'custodian', { name: 'Dee', badges: ['0a0b0c0d'] })).body).toMatchObject({ error: 'conflict', message: expect.stringContaining('already belongs to cy') });
    expect((await lab.call('POST', '/api/affiliates/cy/qualifications', 'custodian', { tool: 'printer' })).body.qualifications).toEqual([{ tool: 'printer', expires: null }]);
    expect((await lab.call('POST', '/api/affiliates/cy/qualifications', 'custodian', { tool: 'lathe' })).status).toBe(404);
    expect((await lab.call('POST', '/api/affiliates/nobody/qualifications', 'custodian', { tool: 'printer' })).status).toBe(404);
    // what is read can be written back as it is
    const read = (await lab.call('GET', '/api/affiliates/cy', 'custodian')).body;
    const { id: _id, ...body } = { ...read, qualifications: [{ tool: 'printer', expires: '2030-06-30' }] };
    expect((await lab.call('PUT', '/api/affiliates/cy', 'custodian', body)).body.qualifications).toEqual([{ tool: 'printer', expires: '2030-06-30T23:59:59.999Z' }]);
    const again = (await lab.call('GET', '/api/affiliates/cy', 'custodian')).body;
    const { id: _again, ...same } = again;
    expect((await lab.call('PUT', '/api/affiliates/cy', 'custodian', same)).body).toEqual(again);
    const withdrawn = await lab.call('DELETE', '/api/affiliates/cy/qualifications/printer', 'admin');
    expect(withdrawn.body.qualifications[0].expires <= new Date().toISOString()).toBe(true);
    expect((await lab.call('DELETE', '/api/affiliates/cy/qualifications/printer', 'admin')).status).toBe(404);
    // the access decision sees it at once
    lab.sim.badge('0A0B0C0D');
    await waitFor(() => lab.gw.journal.latest('access.decision', 'printer')?.data.uid === '0A0B0C0D');
    expect(lab.gw.journal.latest('access.decision', 'printer')!.data).toMatchObject({ kind: 'deny' });
    expect((await lab.call('PUT', '/api/affiliates/cy', 'custodian', { name: 'Cy', status: 'suspended' })).body.status).toBe('suspended');
  });

  it("shows devices in full to staff and only id and state to affiliates", async () => {
    expect((await lab.call('GET', '/api/devices', 'affiliate')).body).toEqual([{ id: 'n1', state: 'online' }]);
    expect((await lab.call('GET', '/api/devices', 'maintainer')).body[0]).toMatchObject({ id: 'n1', kind: 'metering-node', detail: expect.objectContaining({ relay: expect.any(Object) }) });
    expect((await lab.call('GET', '/api/devices/nope', 'maintainer')).status).toBe(404);
  });
});
