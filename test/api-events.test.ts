/** Live events over a real socket (SSE) and /metrics: sessions' meters and cost, tool and device changes, affiliates' own sessions only, cleanup and the bound on clients. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CLIENTS, MAX_PER_TOKEN, STAFF_SHARE } from '../gateway/src/http/events.js';
import { createToken, type Role } from '../gateway/src/http/tokens.js';
import { waitFor } from './helpers.js';
import { ADA, startApiLab, type ApiLab } from './api-lab.js';

interface Received {
  event: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body, which the assertions check
  data: any;
}

/** An event stream read from the socket, parsed as it arrives. */
async function stream(url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const res = await fetch(url, { headers, signal: controller.signal });
  const events: Received[] = [];
  if (res.ok) {
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data) events.push({ event, data: JSON.parse(data) });
          }
        }
      } catch {
        // aborted
      }
    })();
  }
  return { res, events, close: () => controller.abort() };
}

describe('live events and metrics', () => {
  let lab: ApiLab;
  beforeAll(async () => {
    lab = await startApiLab();
  });
  afterAll(async () => lab?.stop());
  const url = (q = '') => `${lab.gw.url}/api/events${q}`;
  const metric = async (name: string) => {
    const text = (await lab.call('GET', '/metrics', 'maintainer')).text;
    return text.split('\n').filter((l) => l.startsWith(name));
  };

  it('refuses a stream without a valid token', async () => {
    const none = await stream(url());
    expect(none.res.status).toBe(401);
    const bad = await stream(url('?token=ovn_wrong'));
    expect(bad.res.status).toBe(401);
    expect(await bad.res.json()).toMatchObject({ error: 'bad-token' });
  });

  it("streams a session's meters and cost to its affiliate and the staff, and its end with the charge; another affiliate sees only the tool", async () => {
    const ada = await stream(url(`?token=${lab.tokens.affiliate}`));
    const bo = await stream(url(), { authorization: `Bearer ${lab.tokens.bo}` });
    const staff = await stream(url(), { authorization: `Bearer ${lab.tokens.custodian}` });
    expect(ada.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    // what there is now, at once
    await waitFor(() => staff.events.some((e) => e.event === 'tool' && e.data.id === 'printer') && staff.events.some((e) => e.event === 'device' && e.data.id === 'n1' && e.data.state === 'online'));
    expect(await metric('ovn_gateway_event_streams')).toContain('ovn_gateway_event_streams 3');

    lab.sim.badge(ADA);
    lab.sim.setBusy(true);
    const sessionId = (await waitFor(() => ada.events.find((e) => e.event === 'session')))!.data.sessionId as string;
    await waitFor(() => bo.events.some((e) => e.event === 'tool' && e.data.inUse));
    // the timer's updates, with the running cost
    const ticking = await waitFor(() => ada.events.filter((e) => e.event === 'session' && e.data.activeS > 0).at(-1), 10_000);
    expect(ticking.data).toMatchObject({ sessionId, affiliateId: 'ada', toolId: 'printer', cost: { total: '2.00', currency: 'EUR', parts: { payback: '1.00' } } });
    expect(staff.events.some((e) => e.event === 'session' && e.data.sessionId === sessionId)).toBe(true);

    lab.sim.setBusy(false);
    lab.sim.badge(ADA);
    const ended = await waitFor(() => ada.events.find((e) => e.event === 'session' && e.data.ended));
    expect(ended.data).toMatchObject({ sessionId, ended: true, endedAt: expect.any(String), cost: { total: '2.00', cash: true, parts: { maintenance: '0.60', infrastructure: '0.40', payback: '1.00' } } });
    await waitFor(() => staff.events.some((e) => e.event === 'session' && e.data.ended));

    expect(bo.events.filter((e) => e.event === 'session')).toEqual([]);
    const boTool = bo.events.find((e) => e.event === 'tool' && e.data.session);
    expect(boTool?.data.session).toEqual({ sessionId, toolId: 'printer', startedAt: expect.any(String) });

    await lab.call('POST', '/api/tools/printer/status', 'maintainer', { status: 'maintenance', reason: 'new belt' });
    await waitFor(() => bo.events.some((e) => e.event === 'tool' && e.data.status === 'maintenance' && e.data.statusReason === 'new belt'));
    await lab.call('POST', '/api/tools/printer/status', 'maintainer', { status: 'available' });

    for (const s of [ada, bo, staff]) s.close();
    await waitFor(async () => (await metric('ovn_gateway_event_streams')).includes('ovn_gateway_event_streams 0'));
  });

  it('alerts when a device is lost, and reports its state', async () => {
    const staff = await stream(url(), { authorization: `Bearer ${lab.tokens.maintainer}` });
    await waitFor(() => staff.events.some((e) => e.event === 'device'));
    lab.gw.journal.record('device.lost', 'n1', { reason: 'no heartbeat for 3 s' });
    const alert = await waitFor(() => staff.events.find((e) => e.event === 'alert'));
    expect(alert.data).toEqual({ level: 'warning', text: 'n1: lost (no heartbeat for 3 s)', deviceId: 'n1', at: expect.any(String) });
    lab.sim.fault(7, 2, 'overcurrent');
    const fault = await waitFor(() => staff.events.find((e) => e.event === 'alert' && e.data.level === 'error'));
    expect(fault.data).toMatchObject({ text: 'n1: overcurrent', deviceId: 'n1' });
    // an error fault takes the node out of service until it is cleared
    await waitFor(async () => (await lab.gw.app.inject({ url: '/api/health' })).json().status === 'degraded');
    lab.sim.fault(7, 0, '', false);
    await waitFor(() => lab.gw.devices.get('n1')!.health().state === 'online');
    staff.close();
  });

  it('alerts when a meter reading is set aside as implausible, at most once a minute a device, and counts each in the metrics', async () => {
    const staff = await stream(url(), { authorization: `Bearer ${lab.tokens.maintainer}` });
    await waitFor(() => staff.events.some((e) => e.event === 'device'));
    const implausible = () => staff.events.filter((e) => e.event === 'alert' && /implausible/.test(e.data.text));
    lab.sim.spike({ activeS: 10_000_000 });
    const alert = await waitFor(() => implausible()[0]);
    expect(alert.data).toEqual({ level: 'warning', text: expect.stringMatching(/^n1: implausible meter reading set aside: activeS \d+ after \d+, \+10000000 where at most [\d.]+ was possible$/), deviceId: 'n1', at: expect.any(String) });
    lab.sim.spike({ activeS: 10_000_000 });
    await waitFor(async () => (await metric('ovn_gateway_meter_implausible_total')).includes('ovn_gateway_meter_implausible_total{device="n1"} 2'));
    expect(implausible()).toHaveLength(1);
    staff.close();
  });

  it(`serves ${MAX_PER_TOKEN} streams per token and per affiliate, ${MAX_CLIENTS - STAFF_SHARE} to affiliates together, the rest to staff, ${MAX_CLIENTS} in all`, async () => {
    const open = (token: string) => stream(url(), { authorization: `Bearer ${token}` });
    const mint = (role: Role, affiliateId: string | null = null) => createToken(lab.gw.journal, { role, affiliateId }).token;
    const refusedWith = async (s: Awaited<ReturnType<typeof open>>, status: number, text: string) => {
      expect(s.res.status).toBe(status);
      expect(s.res.headers.get('retry-after')).toBe('10');
      expect(await s.res.json()).toEqual({ error: 'too-many-clients', message: expect.stringContaining(text) });
    };
    const streams: Awaited<ReturnType<typeof open>>[] = [];
    // one token: four, then no more
    for (let i = 0; i < MAX_PER_TOKEN; i++) streams.push(await open(lab.tokens.affiliate));
    await refusedWith(await open(lab.tokens.affiliate), 429, 'this token already holds');
    // another token of the same affiliate: none left for Ada
    await refusedWith(await open(mint('affiliate', 'ada')), 429, 'affiliate ada already holds');
    // affiliates together fill their part; staff still get theirs
    for (let a = 1; streams.length < MAX_CLIENTS - STAFF_SHARE; a++) {
      const token = mint('affiliate', `a${a}`);
      for (let i = 0; i < MAX_PER_TOKEN && streams.length < MAX_CLIENTS - STAFF_SHARE; i++) streams.push(await open(token));
    }
    expect(streams.every((s) => s.res.status === 200)).toBe(true);
    await refusedWith(await open(lab.tokens.bo), 503, 'the rest is kept for staff');
    while (streams.length < MAX_CLIENTS) {
      const token = mint('admin');
      for (let i = 0; i < MAX_PER_TOKEN && streams.length < MAX_CLIENTS; i++) streams.push(await open(token));
    }
    expect(streams.every((s) => s.res.status === 200)).toBe(true);
    await refusedWith(await open(mint('custodian')), 503, `${MAX_CLIENTS} event streams at most`);
    for (const s of streams) s.close();
    await waitFor(async () => (await metric('ovn_gateway_event_streams')).includes('ovn_gateway_event_streams 0'));
    expect((await open(lab.tokens.affiliate)).res.status).toBe(200);
  });

  it('exports Prometheus metrics: devices, sessions, relay switches, errors, outbox and HTTP latency', async () => {
    const res = await lab.call('GET', '/metrics', 'admin');
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.text;
    expect(text).toContain('ovn_gateway_devices_online{kind="metering-node"} 1');
    expect(text).toContain('ovn_gateway_sessions_active 0');
    const switches = Number(/ovn_gateway_relay_switches_total\{device="n1"\} (\d+)/.exec(text)?.[1]);
    expect(switches).toBeGreaterThanOrEqual(2); // on and off for the session
    expect(text).toMatch(/ovn_gateway_serial_errors_total\{device="n1"\} \d+/);
    expect(text).toContain('# TYPE ovn_gateway_mqtt_errors_total counter');
    expect(text).toContain('ovn_gateway_outbox_backlog 0');
    expect(text).toContain('ovn_gateway_outbox_oldest_age_seconds 0');
    expect(text).toMatch(/ovn_gateway_http_request_duration_seconds_count\{method="POST",route="\/api\/tools\/:id\/status",status="200"\} \d+/);
    expect(text).not.toContain('route="/api/events"');
  });

  it('serves /metrics without a token only when the config says so', async () => {
    expect((await lab.call('GET', '/metrics', null)).status).toBe(401);
    const open = await startApiLab({ gateway: { http: { metricsPublic: true } } });
    try {
      const res = await open.call('GET', '/metrics', null);
      expect(res.status).toBe(200);
      expect(res.text).toContain('ovn_gateway_sessions_active');
    } finally {
      await open.stop();
    }
  });
});
