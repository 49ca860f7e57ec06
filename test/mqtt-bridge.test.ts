/** The upstream bridge against a real Mosquitto: state with a last will, availability, session events, buffering. */
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { bridgeSchema } from '../gateway/src/mqtt/bridge-config.js';
import { UpstreamBridge } from '../gateway/src/mqtt/bridge.js';
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { serveTcp, type SimTransport } from '../simulators/src/transports.js';
import { freePort, SIM_CLOCK_RATE, startTestGateway, tempDir, waitFor, type TestGateway } from './helpers.js';
import { Mosquitto, skipWithoutMosquitto } from './mosquitto.js';


interface Seen {
  topic: string;
  payload: string;
  retain: boolean;
  /** A QoS 1 redelivery (at least once), e.g. of what was in flight when the broker went down. */
  dup: boolean;
}

/** A subscriber on the upstream broker that keeps every message it receives. */
async function watch(url: string, filter: string, opts: { clientId?: string } = {}): Promise<{ client: MqttClient; seen: Seen[]; on: (topic: string) => Seen[] }> {
  const seen: Seen[] = [];
  const persistent = opts.clientId !== undefined;
  const client = await connectAsync(url, { ...(persistent ? { clientId: opts.clientId, clean: false } : {}), reconnectPeriod: 200 });
  client.on('message', (topic, payload, packet) => seen.push({ topic, payload: payload.toString(), retain: packet.retain, dup: packet.dup }));
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, seen, on: (topic) => seen.filter((m) => m.topic === topic) };
}

const quietLog = () => createLogger({ level: 'silent', format: 'json' });

describe.skipIf(skipWithoutMosquitto)('upstream bridge to a real Mosquitto', () => {
  let broker: Mosquitto;
  const watchers: MqttClient[] = [];

  beforeAll(async () => {
    broker = new Mosquitto(await freePort());
    await broker.start();
  });

  afterAll(async () => {
    for (const w of watchers) await w.endAsync(true);
    await broker?.stop();
  });

  describe('in a gateway with a metering node', () => {
    const prefix = 'ovn/labs/montreal';
    let sim: MeteringNodeSim;
    let transport: SimTransport;
    let gw: TestGateway;
    let live: Awaited<ReturnType<typeof watch>>;
    let stopped = false;

    beforeAll(async () => {
      live = await watch(broker.url, `${prefix}/#`);
      watchers.push(live.client);
      sim = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 100, powerW: 200, timeScale: 60 });
      transport = await serveTcp(sim, '127.0.0.1', 0);
      gw = await startTestGateway({
        devices: [{ id: 'n1', kind: 'metering-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transport.address } }],
        tools: [{ id: 'printer', node: 'n1', idleTimeoutMin: 60, warnBeforeOffS: 0 }],
        affiliates: [{ id: 'ada', name: 'Ada', badges: ['04A1B2C3'], qualifications: [{ tool: 'printer' }] }],
        bridge: { url: broker.url, prefix },
      });
      await waitFor(async () => (await gw.health()).devices[0]!.state === 'online');
    });

    afterAll(async () => {
      if (!stopped) await gw?.stop();
      await transport?.close();
    });

    it('publishes online, retained, and reports its link in /api/health', async () => {
      await waitFor(() => gw.bridge!.health().connected);
      const late = await watch(broker.url, `${prefix}/gateway/state`);
      watchers.push(late.client);
      await waitFor(() => late.seen.length > 0);
      expect(late.seen[0]).toMatchObject({ topic: `${prefix}/gateway/state`, payload: 'online', retain: true });
      expect((await gw.health()).bridge).toMatchObject({ url: broker.url, connected: true, queued: 0, dropped: 0, lastError: null });
    });

    it('publishes session events when a badge opens and closes a session', async () => {
      sim.badge('04A1B2C3');
      await waitFor(() => gw.journal.events({ kind: 'session.started' }).length === 1);
      sim.badge('04A1B2C3');
      await waitFor(() => live.on(`${prefix}/sessions`).length >= 2);
      const events = live.on(`${prefix}/sessions`).map((m): Record<string, unknown> => ({ retain: m.retain, ...(JSON.parse(m.payload) as Record<string, unknown>) }));
      expect(events[0]).toMatchObject({ retain: false, event: 'session.started', tool: 'printer', affiliateId: 'ada' });
      expect(events[1]).toMatchObject({ retain: false, event: 'session.ended', tool: 'printer', affiliateId: 'ada', reason: 'badge-out' });
      expect(events[1]!.journalId).toBe(gw.journal.events({ kind: 'session.ended' })[0]!.id);
    });

    it('publishes device availability retained, only when it changes', async () => {
      const topic = `${prefix}/devices/n1/availability`;
      const states = () => live.on(topic).map((m) => m.payload);
      // the bridge may have seen the node before its hello (offline) and then online
      await waitFor(() => states().at(-1) === 'online');
      const n = states().length;
      await transport.unplug();
      await waitFor(() => states().length === n + 1, 15_000);
      await new Promise((r) => setTimeout(r, 300)); // a few failed reopen attempts
      await transport.replug();
      // the driver's reconnect backoff plus the node's next heartbeat; generous, for a loaded CI machine
      await waitFor(() => states().length === n + 2, 25_000);
      await new Promise((r) => setTimeout(r, 4500)); // two more polls: nothing changed, nothing sent
      expect(states().slice(n - 1)).toEqual(['online', 'offline', 'online']);
      expect(states().filter((st, i) => st === states()[i - 1])).toEqual([]); // never the same state twice in a row
      expect(live.on(topic).every((m) => !m.retain)).toBe(true); // delivered live: the flag is set only for a new subscriber
      const late = await watch(broker.url, topic);
      watchers.push(late.client);
      await waitFor(() => late.seen.length > 0);
      expect(late.seen).toMatchObject([{ topic, payload: 'online', retain: true }]);
    }, 45_000);

    it('publishes offline itself on a clean stop', async () => {
      const state = `${prefix}/gateway/state`;
      const before = live.on(state).length;
      stopped = true;
      await gw.stop();
      await waitFor(() => live.on(state).length > before);
      expect(live.on(state).slice(before)).toMatchObject([{ topic: state, payload: 'offline', retain: false }]);
    });
  });

  describe('on its own', () => {
    const devices = [{ id: 'n1', state: 'online' }];
    const bridges: UpstreamBridge[] = [];
    const journals: Journal[] = [];
    const startBridge = (prefix: string, extra: Record<string, unknown> = {}) => {
      const journal = Journal.open(join(tempDir('bridge'), 'data'));
      journals.push(journal);
      const cfg = bridgeSchema.parse({ url: broker.url, prefix, ...extra });
      const bridge = new UpstreamBridge(cfg, journal, quietLog(), { health: () => ({ ok: true }), devices: () => devices }, { pollMs: 100, reconnectMs: 300 });
      bridges.push(bridge);
      bridge.start();
      return { bridge, journal };
    };

    afterAll(async () => {
      for (const b of bridges) await b.stop();
      for (const j of journals) j.close();
    });

    it('its last will: offline is published by the broker when the connection dies uncleanly, then online again', async () => {
      const prefix = 'ovn/labs/will';
      const state = `${prefix}/gateway/state`;
      const w = await watch(broker.url, state);
      watchers.push(w.client);
      const { bridge } = startBridge(prefix);
      await waitFor(() => w.seen.some((m) => m.payload === 'online'));
      (bridge as unknown as { client: MqttClient }).client.stream.destroy(); // no DISCONNECT: the broker sends the will
      await waitFor(() => w.seen.some((m) => m.payload === 'offline'), 10_000, 'the will');
      await waitFor(() => w.seen.filter((m) => m.payload === 'online').length === 2, 10_000, 'online after reconnecting');
      expect(w.seen.map((m) => m.payload)).toEqual(['online', 'offline', 'online']);
    });

    it('buffers while the broker is down, drops the oldest events past the bound, and reports them after reconnecting', async () => {
      const prefix = 'ovn/labs/outage';
      const w = await watch(broker.url, `${prefix}/#`, { clientId: 'outage-watcher' });
      watchers.push(w.client);
      const { bridge, journal } = startBridge(prefix, { bufferMessages: 5 });
      await waitFor(() => w.on(`${prefix}/devices/n1/availability`).length === 1);

      await broker.stop();
      await waitFor(() => !bridge.health().connected);
      const seenBefore = w.seen.length;
      devices[0]!.state = 'offline';
      await new Promise((r) => setTimeout(r, 300));
      devices[0]!.state = 'online'; // coalesced: only the latest availability is kept
      await new Promise((r) => setTimeout(r, 300));
      const ids = Array.from({ length: 8 }, (_, i) => journal.record('session.started', 'printer', { affiliateId: `a${i}` }));
      expect(bridge.health()).toMatchObject({ connected: false, queued: 5, dropped: 4 });

      await broker.start();
      await waitFor(() => w.on(`${prefix}/sessions`).filter((m) => !m.dup).length === 4, 15_000, 'the buffered events');
      await waitFor(() => bridge.health().queued === 0);
      // redeliveries of what the watcher had in flight when the broker went down are not the bridge's
      const after = w.seen.slice(seenBefore).filter((m) => !m.dup);
      const dropped = after.filter((m) => m.topic === `${prefix}/gateway/dropped`).map((m) => JSON.parse(m.payload) as Record<string, unknown>);
      expect(dropped).toEqual([{ dropped: 4, since: expect.any(String), at: expect.any(String) }]);
      expect(after.some((m) => m.topic === `${prefix}/gateway/state` && m.payload === 'online')).toBe(true);
      expect(after.filter((m) => m.topic === `${prefix}/sessions`).map((m) => (JSON.parse(m.payload) as { journalId: number }).journalId)).toEqual(ids.slice(4));
      // a retained copy may come too if the watcher subscribed again: only what was sent live counts
      expect(after.filter((m) => m.topic === `${prefix}/devices/n1/availability` && !m.retain).map((m) => m.payload)).toEqual(['online']);
      expect(bridge.health()).toMatchObject({ connected: true, queued: 0, dropped: 4 });
    });
  });
});
