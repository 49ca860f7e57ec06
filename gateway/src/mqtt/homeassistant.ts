/**
 * Home Assistant MQTT discovery: on the broker Home Assistant uses, each tool is a device of
 * its own (reached through the gateway's device) with its entities, the way Zigbee2MQTT
 * announces its devices.
 *
 *   <discovery>/<component>/<node>/<tool>_<entity>/config   retained   what the entity is (empty: removed)
 *   <state>/gateway/availability                            retained   online / offline (offline is also the last will)
 *   <state>/gateway/state                                   retained   {"tools_in_use": n}
 *   <state>/<tool>/availability                             retained   online / offline: the tool's switch answers
 *   <state>/<tool>/state                                    retained   the tool's figures as JSON, when they change
 *   <state>/<tool>/blocked/set                              subscribed ON / OFF, with maintainerSwitch only
 *
 * Config messages are retained, their unique ids are made of the node id, the tool id and the
 * entity (stable across restarts). At each connection the gateway reads back the retained
 * configs and states under its node: those of tools (or entities) no longer configured are
 * emptied, which removes them from Home Assistant. When Home Assistant says it is online on
 * `<discovery>/status` (it restarted), everything is announced again.
 */
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import type { HomeAssistantConfig } from './homeassistant-config.js';

/** What discovery needs to know of a tool to describe it. */
export interface HaTool {
  id: string;
  name: string;
  /** The kinds of its devices, e.g. "metering-node, moonraker-printer": the model Home Assistant shows. */
  model: string;
  meter: boolean;
  printer: boolean;
  /** The currency of its running cost; null: the tool is not billed. */
  currency: string | null;
}

/** A tool's state as published (snake_case, as Home Assistant templates read it). */
export interface HaToolState {
  online: boolean;
  in_use: boolean;
  blocked: boolean;
  user: string;
  cost: number | null;
  session_s: number;
  power_w: number | null;
  energy_wh: number | null;
  hotend_c: number | null;
  bed_c: number | null;
  progress_pct: number | null;
  filament_g: number | null;
}

export interface HaSources {
  gatewayName: string;
  tools(): HaTool[];
  state(toolId: string): HaToolState;
  /** A maintainer blocked (true) or unblocked (false) the tool from Home Assistant. */
  setBlocked(toolId: string, blocked: boolean): void;
}

export interface HaSettings {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  clientId: string;
  nodeId: string;
  stateTopic: string;
}

export interface HaOptions {
  /** How long after subscribing the retained messages read back are taken as complete. */
  settleMs?: number;
  reconnectMs?: number;
}

export interface DiscoveryMessage {
  topic: string;
  payload: Record<string, unknown>;
}

const ORIGIN = { name: 'ovn-gateway', sw_version: VERSION };

/** The discovery configs of the gateway and its tools: every entity of every tool. */
export function discoveryMessages(cfg: Pick<HomeAssistantConfig, 'discoveryPrefix' | 'maintainerSwitch'>, s: Pick<HaSettings, 'nodeId' | 'stateTopic'>, gatewayName: string, tools: readonly HaTool[]): DiscoveryMessage[] {
  const node = s.nodeId;
  const gatewayIds = `ovn_${node}`;
  const gatewayAvailability = `${s.stateTopic}/gateway/availability`;
  const out: DiscoveryMessage[] = [];
  const topic = (component: string, objectId: string) => `${cfg.discoveryPrefix}/${component}/${node}/${objectId}/config`;
  out.push({
    topic: topic('sensor', 'gateway_tools_in_use'),
    payload: {
      name: 'Tools in use',
      unique_id: `${gatewayIds}_tools_in_use`,
      state_topic: `${s.stateTopic}/gateway/state`,
      value_template: '{{ value_json.tools_in_use }}',
      state_class: 'measurement',
      icon: 'mdi:tools',
      availability_topic: gatewayAvailability,
      device: { identifiers: [gatewayIds], name: gatewayName, model: 'Lab equipment gateway', manufacturer: 'ovn-gateway', sw_version: VERSION },
      origin: ORIGIN,
    },
  });
  for (const t of tools) {
    const ids = `${gatewayIds}_${t.id}`;
    const stateTopic = `${s.stateTopic}/${t.id}/state`;
    const device = { identifiers: [ids], name: t.name, model: t.model, manufacturer: 'ovn-gateway', via_device: gatewayIds };
    const both = { availability: [{ topic: gatewayAvailability }, { topic: `${s.stateTopic}/${t.id}/availability` }], availability_mode: 'all' };
    const entity = (component: string, key: string, fields: Record<string, unknown>, availability: Record<string, unknown> = both) =>
      out.push({ topic: topic(component, `${t.id}_${key}`), payload: { unique_id: `${ids}_${key}`, state_topic: stateTopic, ...fields, ...availability, device, origin: ORIGIN } });
    const value = (key: string) => `{{ value_json.${key} }}`;
    const onOff = (key: string) => `{{ 'ON' if value_json.${key} else 'OFF' }}`;
    entity('binary_sensor', 'online', { name: 'Online', device_class: 'connectivity', value_template: onOff('online'), entity_category: 'diagnostic' }, { availability_topic: gatewayAvailability });
    entity('binary_sensor', 'in_use', { name: 'In use', device_class: 'occupancy', value_template: onOff('in_use') });
    entity('sensor', 'user', { name: 'Current user', icon: 'mdi:account', value_template: value('user') });
    entity('sensor', 'session_time', { name: 'Session time', device_class: 'duration', unit_of_measurement: 's', value_template: value('session_s') });
    if (t.currency) entity('sensor', 'cost', { name: 'Running cost', device_class: 'monetary', unit_of_measurement: t.currency, suggested_display_precision: 2, value_template: value('cost') });
    if (t.meter) {
      entity('sensor', 'power', { name: 'Power', device_class: 'power', unit_of_measurement: 'W', state_class: 'measurement', value_template: value('power_w') });
      entity('sensor', 'energy', { name: 'Energy', device_class: 'energy', unit_of_measurement: 'Wh', state_class: 'total_increasing', value_template: value('energy_wh') });
    }
    if (t.printer) {
      entity('sensor', 'hotend_temperature', { name: 'Hotend temperature', device_class: 'temperature', unit_of_measurement: '°C', state_class: 'measurement', value_template: value('hotend_c') });
      entity('sensor', 'bed_temperature', { name: 'Bed temperature', device_class: 'temperature', unit_of_measurement: '°C', state_class: 'measurement', value_template: value('bed_c') });
      entity('sensor', 'job_progress', { name: 'Job progress', unit_of_measurement: '%', state_class: 'measurement', icon: 'mdi:printer-3d', value_template: value('progress_pct') });
      entity('sensor', 'filament', { name: 'Filament used', device_class: 'weight', unit_of_measurement: 'g', state_class: 'total_increasing', icon: 'mdi:printer-3d-nozzle', value_template: value('filament_g') });
    }
    if (cfg.maintainerSwitch) {
      entity('switch', 'blocked', { name: 'Blocked', icon: 'mdi:lock', entity_category: 'config', command_topic: `${s.stateTopic}/${t.id}/blocked/set`, payload_on: 'ON', payload_off: 'OFF', value_template: onOff('blocked') });
    }
  }
  return out;
}

export class HomeAssistantDiscovery {
  private client: MqttClient | null = null;
  private timer: NodeJS.Timeout | null = null;
  private settleTimer: NodeJS.Timeout | null = null;
  /** What was last published per retained topic (so only changes go out); cleared at each connection. */
  private readonly published = new Map<string, string>();
  /** Retained topics under this node read back from the broker. */
  private readonly seen = new Set<string>();
  private settled = false;
  private stopped = false;
  private announcements = 0;
  private lastError: string | null = null;

  constructor(
    private readonly cfg: HomeAssistantConfig,
    private readonly settings: HaSettings,
    private readonly sources: HaSources,
    private readonly log: Logger,
    private readonly opts: HaOptions = {},
  ) {}

  private get gatewayAvailability(): string {
    return `${this.settings.stateTopic}/gateway/availability`;
  }

  /** The filters of this node's retained topics, read back at each connection. */
  private get ownFilters(): string[] {
    const s = this.settings;
    return [`${this.cfg.discoveryPrefix}/+/${s.nodeId}/+/config`, `${s.stateTopic}/+/state`, `${s.stateTopic}/+/availability`];
  }

  start(): void {
    const s = this.settings;
    const options: IClientOptions = {
      clientId: s.clientId,
      clean: true,
      keepalive: 30,
      reconnectPeriod: this.opts.reconnectMs ?? 2000,
      connectTimeout: 10_000,
      queueQoSZero: false,
      will: { topic: this.gatewayAvailability, payload: Buffer.from('offline'), qos: 1, retain: true },
      ...(s.username !== undefined ? { username: s.username } : {}),
      ...(s.password !== undefined ? { password: s.password } : {}),
    };
    const client = connect(s.url, options);
    this.client = client;
    client.on('connect', () => void this.onConnect(client));
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload.toString(), packet.retain));
    client.on('error', (err) => {
      if (err.message !== this.lastError) this.log.warn({ err: err.message, url: s.url }, `Home Assistant's broker ${s.url}: ${err.message}`);
      this.lastError = err.message;
    });
    this.timer = setInterval(() => this.publishStates(false), this.cfg.intervalS * 1000);
    this.timer.unref();
  }

  health(): { url: string; connected: boolean; announcements: number; lastError: string | null } {
    return { url: this.settings.url, connected: this.client?.connected ?? false, announcements: this.announcements, lastError: this.lastError };
  }

  /** Says offline (a clean DISCONNECT suppresses the will), then disconnects; the configs stay, so Home Assistant keeps the devices. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.settleTimer) clearTimeout(this.settleTimer);
    const client = this.client;
    if (!client) return;
    if (client.connected) await client.publishAsync(this.gatewayAvailability, 'offline', { qos: 1, retain: true }).catch(() => {});
    await client.endAsync(!client.connected);
  }

  private async onConnect(client: MqttClient): Promise<void> {
    this.lastError = null;
    this.published.clear();
    this.seen.clear();
    this.settled = false;
    const filters = [...this.ownFilters, `${this.cfg.discoveryPrefix}/status`];
    if (this.cfg.maintainerSwitch) filters.push(`${this.settings.stateTopic}/+/blocked/set`);
    try {
      await client.subscribeAsync(filters, { qos: 1 });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "Home Assistant discovery: could not subscribe on Home Assistant's broker");
      return;
    }
    this.log.info({ url: this.settings.url, node: this.settings.nodeId }, `Home Assistant discovery on ${this.settings.url} (node ${this.settings.nodeId})`);
    this.announce();
    // the retained messages come right after the SUBACK: once they are in, what is not ours any more is removed
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.settled = true;
      for (const topic of this.seen) this.removeIfStale(topic);
    }, this.opts.settleMs ?? 1000);
  }

  /** Publishes every config, the gateway's availability and every state. */
  private announce(): void {
    const client = this.client;
    if (!client?.connected || this.stopped) return;
    this.announcements++;
    this.send(this.gatewayAvailability, 'online', true);
    for (const m of this.currentConfigs()) this.send(m.topic, JSON.stringify(m.payload), true);
    this.publishStates(true);
  }

  private currentConfigs(): DiscoveryMessage[] {
    return discoveryMessages(this.cfg, this.settings, this.sources.gatewayName, this.sources.tools());
  }

  private publishStates(force: boolean): void {
    if (!this.client?.connected || this.stopped) return;
    let inUse = 0;
    for (const t of this.sources.tools()) {
      let state: HaToolState;
      try {
        state = this.sources.state(t.id);
      } catch (err) {
        this.log.warn({ err, tool: t.id }, `${t.id}: state not read for Home Assistant`);
        continue;
      }
      if (state.in_use) inUse++;
      this.sendIfChanged(`${this.settings.stateTopic}/${t.id}/availability`, state.online ? 'online' : 'offline', force);
      this.sendIfChanged(`${this.settings.stateTopic}/${t.id}/state`, JSON.stringify(state), force);
    }
    this.sendIfChanged(`${this.settings.stateTopic}/gateway/state`, JSON.stringify({ tools_in_use: inUse }), force);
  }

  private sendIfChanged(topic: string, payload: string, force: boolean): void {
    if (!force && this.published.get(topic) === payload) return;
    this.send(topic, payload, true);
  }

  private send(topic: string, payload: string, retain: boolean): void {
    this.published.set(topic, payload);
    this.client?.publish(topic, payload, { qos: 1, retain }, (err) => {
      if (err && !this.stopped) this.log.debug({ err: err.message, topic }, 'Home Assistant publish failed');
    });
  }

  private onMessage(topic: string, payload: string, retain: boolean): void {
    if (topic === `${this.cfg.discoveryPrefix}/status`) {
      if (payload === 'online') {
        this.log.info("Home Assistant is online: announcing the tools again");
        this.announce();
      }
      return;
    }
    const set = /^(.*)\/([a-z0-9-]+)\/blocked\/set$/.exec(topic);
    if (set && set[1] === this.settings.stateTopic) {
      if (!this.cfg.maintainerSwitch) return;
      const known = this.sources.tools().some((t) => t.id === set[2]);
      if (!known || (payload !== 'ON' && payload !== 'OFF')) {
        this.log.warn({ topic, payload: payload.slice(0, 40) }, `Home Assistant: ignored ${JSON.stringify(payload.slice(0, 40))} on ${topic} (a configured tool, ON or OFF)`);
        return;
      }
      this.sources.setBlocked(set[2]!, payload === 'ON');
      this.publishStates(false);
      return;
    }
    if (!retain || payload === '') return;
    this.seen.add(topic);
    if (this.settled) this.removeIfStale(topic);
  }

  /** A retained topic of this node that nothing configured publishes any more is emptied (Home Assistant removes the entity). */
  private removeIfStale(topic: string): void {
    if (this.published.has(topic)) return;
    this.seen.delete(topic);
    this.log.info({ topic }, `Home Assistant: removed ${topic} (no longer configured)`);
    this.send(topic, '', true);
    this.published.delete(topic);
  }
}
