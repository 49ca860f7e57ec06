/**
 * Home Assistant MQTT discovery: the config messages against the discovery schema as Home
 * Assistant documents it, and a gateway announcing its tools on a real Mosquitto (retained
 * configs read back, states, the birth message, removal of a tool no longer configured).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoveryMessages, type HaTool } from '../gateway/src/mqtt/homeassistant.js';
import { homeassistantSchema } from '../gateway/src/mqtt/homeassistant-config.js';
import { configSchema } from '../gateway/src/config/schema.js';
import { toolStatusOf } from '../gateway/src/sessions/projection.js';
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { serveTcp, type SimTransport } from '../simulators/src/transports.js';
import { freePort, SIM_CLOCK_RATE, startTestGateway, waitFor, type TestGateway } from './helpers.js';
import { Mosquitto, retained, skipWithoutMosquitto, watch } from './mosquitto.js';

interface Schema {
  topic: string;
  common: string[];
  platforms: Record<string, { required: string[]; keys: string[] }>;
  availabilityModes: string[];
  entityCategories: string[];
  availabilityItem: string[];
  device: string[];
  origin: { required: string[]; keys: string[] };
  deviceClasses: { sensor: Record<string, string[] | null>; binary_sensor: string[]; switch: string[] };
  stateClasses: Record<string, null>;
  stateClassesByDeviceClass: Record<string, string[]>;
  abbreviations: Record<string, string>;
  deviceAbbreviations: Record<string, string>;
  originAbbreviations: Record<string, string>;
}
const schema = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'homeassistant', 'discovery-schema.json'), 'utf8')) as Schema;

/** Expands abbreviated keys the way Home Assistant's discovery does before validating. */
function expand(p: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) {
    const key = schema.abbreviations[k] ?? k;
    if (key === 'device' && v && typeof v === 'object') out[key] = Object.fromEntries(Object.entries(v).map(([dk, dv]) => [schema.deviceAbbreviations[dk] ?? dk, dv]));
    else if (key === 'origin' && v && typeof v === 'object') out[key] = Object.fromEntries(Object.entries(v).map(([ok, ov]) => [schema.originAbbreviations[ok] ?? ok, ov]));
    else if (key === 'availability' && Array.isArray(v)) out[key] = v.map((a: Record<string, unknown>) => Object.fromEntries(Object.entries(a).map(([ak, av]) => [schema.abbreviations[ak] ?? ak, av])));
    else out[key] = v;
  }
  return out;
}

/** Every problem Home Assistant's discovery schema finds in one config message (empty: valid). */
function problems(topic: string, raw: Record<string, unknown>): string[] {
  const errs: string[] = [];
  const m = new RegExp(schema.topic).exec(topic);
  if (!m) return [`${topic}: not a discovery topic`];
  const platform = schema.platforms[m[1]!];
  if (!platform) return [`${topic}: platform ${m[1]} not checked`];
  const p = expand(raw);
  for (const k of Object.keys(p)) if (!schema.common.includes(k) && !platform.keys.includes(k)) errs.push(`${topic}: unknown key ${k}`);
  for (const k of platform.required) if (p[k] === undefined) errs.push(`${topic}: missing ${k}`);
  if (typeof p.unique_id !== 'string') errs.push(`${topic}: a device block needs a unique_id`);
  const dev = p.device as Record<string, unknown> | undefined;
  if (!dev) errs.push(`${topic}: no device`);
  else {
    for (const k of Object.keys(dev)) if (!schema.device.includes(k)) errs.push(`${topic}: unknown device key ${k}`);
    if (!Array.isArray(dev.identifiers) || dev.identifiers.length === 0) errs.push(`${topic}: device without identifiers`);
  }
  const origin = p.origin as Record<string, unknown> | undefined;
  if (origin) {
    for (const k of Object.keys(origin)) if (!schema.origin.keys.includes(k)) errs.push(`${topic}: unknown origin key ${k}`);
    for (const k of schema.origin.required) if (origin[k] === undefined) errs.push(`${topic}: origin without ${k}`);
  }
  if (p.availability !== undefined) {
    if (!Array.isArray(p.availability)) errs.push(`${topic}: availability is not a list`);
    else for (const a of p.availability as Record<string, unknown>[]) for (const k of Object.keys(a)) if (!schema.availabilityItem.includes(k)) errs.push(`${topic}: unknown availability key ${k}`);
    if (p.availability_topic !== undefined) errs.push(`${topic}: availability and availability_topic are exclusive`);
  }
  if (p.availability_mode !== undefined && !schema.availabilityModes.includes(p.availability_mode as string)) errs.push(`${topic}: availability_mode ${String(p.availability_mode)}`);
  if (p.entity_category !== undefined && !schema.entityCategories.includes(p.entity_category as string)) errs.push(`${topic}: entity_category ${String(p.entity_category)}`);
  const dc = p.device_class as string | undefined;
  if (m[1] === 'sensor') {
    if (dc !== undefined) {
      if (!(dc in schema.deviceClasses.sensor)) errs.push(`${topic}: sensor device_class ${dc} not checked`);
      const units = schema.deviceClasses.sensor[dc];
      if (units && !units.includes(p.unit_of_measurement as string)) errs.push(`${topic}: unit ${String(p.unit_of_measurement)} not one of ${dc}'s`);
      const sc = p.state_class as string | undefined;
      if (sc !== undefined && schema.stateClassesByDeviceClass[dc] && !schema.stateClassesByDeviceClass[dc].includes(sc)) errs.push(`${topic}: state_class ${sc} not allowed for ${dc}`);
    }
    if (p.state_class !== undefined && !((p.state_class as string) in schema.stateClasses)) errs.push(`${topic}: state_class ${String(p.state_class)}`);
  }
  if (m[1] === 'binary_sensor' && dc !== undefined && !schema.deviceClasses.binary_sensor.includes(dc)) errs.push(`${topic}: binary_sensor device_class ${dc}`);
  if (m[1] === 'switch' && dc !== undefined && !schema.deviceClasses.switch.includes(dc)) errs.push(`${topic}: switch device_class ${dc}`);
  return errs;
}

const ha = homeassistantSchema.parse({ url: 'mqtt://127.0.0.1:1883', maintainerSwitch: true });
const settings = { nodeId: 'fablab_nord', stateTopic: 'ovn-gateway/fablab_nord' };
const TOOLS: HaTool[] = [
  { id: 'laser', name: 'Laser cutter', model: 'metering-node', meter: true, printer: false, currency: 'EUR' },
  { id: 'mk3s', name: 'Prusa MK3S', model: 'metering-node, printer', meter: true, printer: true, currency: 'EUR' },
  { id: 'voron', name: 'Voron', model: 'gpio, moonraker-printer', meter: false, printer: true, currency: null },
];

describe('discovery messages against the documented schema', () => {
  const msgs = discoveryMessages(ha, settings, 'Fablab Nord', TOOLS);
  const byId = new Map(msgs.map((m) => [m.payload.unique_id as string, m]));

  it('are valid: known keys, required keys, device block, device classes with their units and state classes', () => {
    expect(msgs.flatMap((m) => problems(m.topic, m.payload))).toEqual([]);
  });

  it('catch what Home Assistant refuses (the checker is not blind)', () => {
    const energy = byId.get('ovn_fablab_nord_laser_energy')!;
    expect(problems(energy.topic, { ...energy.payload, unit_of_measurement: 'kW' })).toEqual([expect.stringContaining('unit kW')]);
    expect(problems(energy.topic, { ...energy.payload, state_class: 'measurement' })).toEqual([expect.stringContaining('state_class measurement not allowed')]);
    expect(problems(energy.topic, { ...energy.payload, stat_t: undefined, state_topic: undefined })).toEqual([expect.stringContaining('missing state_topic')]);
    expect(problems(energy.topic, { ...energy.payload, colour: 'red' })).toEqual([expect.stringContaining('unknown key colour')]);
    expect(problems(energy.topic, { ...energy.payload, device: { ids: ['x'], maker: 'y' } })).toEqual([expect.stringContaining('unknown device key maker')]);
    expect(problems('homeassistant/sensor/fablab nord/x/config', energy.payload)).toEqual([expect.stringContaining('not a discovery topic')]);
  });

  it('use full key names that are the expansions of the documented abbreviations', () => {
    const full = new Set([...Object.values(schema.abbreviations), ...Object.values(schema.deviceAbbreviations)]);
    for (const m of msgs) {
      expect(expand(m.payload)).toEqual(m.payload);
      for (const k of Object.keys(m.payload)) if (schema.abbreviations[k] === undefined) expect(full.has(k) || schema.common.includes(k) || Object.values(schema.platforms).some((p) => p.keys.includes(k)), k).toBe(true);
    }
  });

  it('make each tool a device through the gateway, with the entities its devices allow', () => {
    const gateway = msgs.find((m) => m.topic === 'homeassistant/sensor/fablab_nord/gateway_tools_in_use/config')!;
    expect(gateway.payload.device).toMatchObject({ identifiers: ['ovn_fablab_nord'], name: 'Fablab Nord' });
    const entities = (tool: string) => msgs.filter((m) => (m.payload.device as { identifiers: string[] }).identifiers[0] === `ovn_fablab_nord_${tool}`).map((m) => m.topic.split('/')[3]).sort();
    expect(entities('laser')).toEqual(['laser_blocked', 'laser_cost', 'laser_energy', 'laser_in_use', 'laser_online', 'laser_power', 'laser_session_time', 'laser_user']);
    expect(entities('voron')).toEqual(['voron_bed_temperature', 'voron_blocked', 'voron_filament', 'voron_hotend_temperature', 'voron_in_use', 'voron_job_progress', 'voron_online', 'voron_session_time', 'voron_user']);
    for (const m of msgs.filter((x) => !x.topic.includes('/gateway_'))) {
      expect(m.payload.device).toMatchObject({ via_device: 'ovn_fablab_nord', manufacturer: 'ovn-gateway' });
      expect(typeof (m.payload.device as { model: unknown }).model).toBe('string');
    }
    expect(byId.get('ovn_fablab_nord_mk3s_energy')!.payload).toMatchObject({ device_class: 'energy', state_class: 'total_increasing', unit_of_measurement: 'Wh' });
    expect(byId.get('ovn_fablab_nord_mk3s_in_use')!.topic).toBe('homeassistant/binary_sensor/fablab_nord/mk3s_in_use/config');
    expect(new Set(msgs.map((m) => m.payload.unique_id)).size).toBe(msgs.length);
  });

  it('leave the maintainer switch out unless asked for', () => {
    const plain = discoveryMessages(homeassistantSchema.parse({ url: 'mqtt://x:1' }), settings, 'Fablab Nord', TOOLS);
    expect(plain.filter((m) => m.topic.includes('/switch/'))).toEqual([]);
  });

  it('the config needs a broker: its url or a bridge', () => {
    const r = configSchema.safeParse({ homeassistant: {} });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain('add a bridge section');
    expect(configSchema.safeParse({ homeassistant: {}, bridge: { url: 'mqtt://h:1883', prefix: 'ovn/labs/x' } }).success).toBe(true);
  });
});

describe.skipIf(skipWithoutMosquitto)('discovery on a real Mosquitto', () => {
  let broker: Mosquitto;
  const sims: MeteringNodeSim[] = [];
  const transports: SimTransport[] = [];
  let gw: TestGateway | null = null;

  const config = (tools: string[]) => ({
    gateway: { name: 'Fablab Nord' },
    devices: tools.map((t, i) => ({ id: `n${i + 1}`, kind: 'metering-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transports[i]!.address } })),
    tools: tools.map((t, i) => ({ id: t, name: t === 'laser' ? 'Laser cutter' : 'Lathe', node: `n${i + 1}`, idleTimeoutMin: 60, warnBeforeOffS: 0 })),
    affiliates: [{ id: 'ada', name: 'Ada Lovelace', badges: ['04A1B2C3'], qualifications: [{ tool: 'laser' }] }],
    homeassistant: { url: broker.url, maintainerSwitch: true, intervalS: 1 },
  });

  beforeAll(async () => {
    broker = new Mosquitto(await freePort());
    await broker.start();
    for (const id of ['n1', 'n2']) {
      const sim = new MeteringNodeSim({ nodeId: id, heartbeatS: 1, meterIntervalMs: 100, powerW: 200, timeScale: 60 });
      sims.push(sim);
      transports.push(await serveTcp(sim, '127.0.0.1', 0));
    }
  });

  afterAll(async () => {
    await gw?.stop();
    for (const t of transports) await t.close();
    await broker?.stop();
  });

  let first: Map<string, string>;

  it('announces every tool retained, valid against the schema, with its state and availability', async () => {
    gw = await startTestGateway(config(['laser', 'lathe']));
    await waitFor(() => gw!.homeassistant!.health().connected);
    await waitFor(async () => (await gw!.health()).devices.every((d) => d.state === 'online'));
    await waitFor(async () => (await retained(broker.url, 'ovn-gateway/fablab_nord/laser/availability', 100)).get('ovn-gateway/fablab_nord/laser/availability') === 'online');
    first = await retained(broker.url, 'homeassistant/#');
    const configs = [...first].filter(([t]) => t.endsWith('/config'));
    expect(configs.length).toBe(1 + 2 * 7); // the gateway's, and seven per metered tool (no billing: no cost)
    expect(configs.flatMap(([t, p]) => problems(t, JSON.parse(p) as Record<string, unknown>))).toEqual([]);
    const states = await retained(broker.url, 'ovn-gateway/fablab_nord/#');
    expect(states.get('ovn-gateway/fablab_nord/gateway/availability')).toBe('online');
    expect(JSON.parse(states.get('ovn-gateway/fablab_nord/laser/state')!)).toMatchObject({ online: true, in_use: false, user: '—', session_s: 0, blocked: false });
    // every topic a config names is one the gateway publishes
    for (const [, p] of configs) {
      const c = JSON.parse(p) as { state_topic: string; availability?: { topic: string }[]; availability_topic?: string };
      for (const t of [c.state_topic, c.availability_topic, ...(c.availability ?? []).map((a) => a.topic)].filter(Boolean)) expect(states.has(t!), t).toBe(true);
    }
  }, 30_000);

  it('shows who uses a tool by name (never the badge), its power and energy', async () => {
    sims[0]!.badge('04A1B2C3');
    const topic = 'ovn-gateway/fablab_nord/laser/state';
    const state = await waitFor(async () => {
      const s = JSON.parse((await retained(broker.url, topic, 100)).get(topic) ?? '{}') as Record<string, unknown>;
      return s.in_use === true && typeof s.power_w === 'number' && s.power_w > 0 ? s : null;
    }, 15_000);
    expect(state).toMatchObject({ user: 'Ada Lovelace', online: true });
    expect(typeof state.energy_wh).toBe('number');
    expect(JSON.stringify(state)).not.toContain('04A1B2C3');
    expect(JSON.parse((await retained(broker.url, 'ovn-gateway/fablab_nord/gateway/state', 100)).get('ovn-gateway/fablab_nord/gateway/state')!)).toEqual({ tools_in_use: 1 });
  }, 30_000);

  it('announces again when Home Assistant says it is online', async () => {
    const live = await watch(broker.url, 'homeassistant/+/fablab_nord/+/config');
    await new Promise((r) => setTimeout(r, 400)); // the retained ones
    const before = live.seen.length;
    const announced = gw!.homeassistant!.health().announcements;
    await live.client.publishAsync('homeassistant/status', 'online');
    await waitFor(() => live.seen.length >= before + 15);
    expect(gw!.homeassistant!.health().announcements).toBe(announced + 1);
    expect(live.seen.slice(before).every((m) => !m.retain && m.payload.length > 0)).toBe(true);
    await live.client.endAsync();
  });

  it('blocks and unblocks a tool from the maintainer switch, journaled as by Home Assistant', async () => {
    const live = await watch(broker.url, 'ovn-gateway/fablab_nord/lathe/state');
    await live.client.publishAsync('ovn-gateway/fablab_nord/lathe/blocked/set', 'ON');
    await waitFor(() => toolStatusOf(gw!.journal, 'lathe').status === 'blocked');
    expect(toolStatusOf(gw!.journal, 'lathe')).toMatchObject({ by: 'home-assistant' });
    await waitFor(() => live.seen.some((m) => (JSON.parse(m.payload) as { blocked: boolean }).blocked));
    await live.client.publishAsync('ovn-gateway/fablab_nord/lathe/blocked/set', 'maybe');
    await live.client.publishAsync('ovn-gateway/fablab_nord/lathe/blocked/set', 'OFF');
    await waitFor(() => toolStatusOf(gw!.journal, 'lathe').status === 'available');
    await waitFor(() => gw!.logs.some((l) => String(l.msg).includes('ignored "maybe"')));
    await live.client.endAsync();
  });

  it('says offline when stopped, and keeps unique ids across a restart while removing a tool no longer configured', async () => {
    await gw!.stop();
    gw = null;
    expect((await retained(broker.url, 'ovn-gateway/fablab_nord/gateway/availability', 100)).get('ovn-gateway/fablab_nord/gateway/availability')).toBe('offline');
    gw = await startTestGateway(config(['laser']));
    await waitFor(() => gw!.homeassistant!.health().connected);
    const after = await waitFor(async () => {
      const r = await retained(broker.url, 'homeassistant/#');
      return [...r.keys()].some((t) => t.includes('/lathe_')) ? null : r;
    }, 10_000);
    const laser = (m: Map<string, string>) => [...m].filter(([t]) => t.includes('/laser_')).map(([t, p]) => [t, (JSON.parse(p) as { unique_id: string }).unique_id]);
    expect(laser(after)).toEqual(laser(first));
    expect(after.size).toBe(1 + 7);
    const states = await retained(broker.url, 'ovn-gateway/fablab_nord/#');
    expect([...states.keys()].filter((t) => t.includes('/lathe/'))).toEqual([]);
    expect(gw!.logs.some((l) => String(l.msg).includes('removed homeassistant/binary_sensor/fablab_nord/lathe_in_use/config'))).toBe(true);
  }, 30_000);
});

