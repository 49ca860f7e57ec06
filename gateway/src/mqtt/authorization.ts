/**
 * What a client may publish and subscribe to, decided in aedes' `authorizePublish` and
 * `authorizeSubscribe` hooks by the topic rules of topics.ts, with subscriptions capped per
 * client. What a device publishes must also be valid against its topic's schema. A message
 * that is refused or invalid is acknowledged (so that the device does not send it again
 * forever) and delivered to no one, and it is counted and logged naming the device, the topic
 * and the problem.
 */
import type { AedesPublishPacket, Client, PublishPacket, Subscription } from 'aedes';
import type { Authentication } from './authentication.js';
import type { BrokerConfig } from './config.js';
import type { BrokerMetrics } from './metrics.js';
import { parseDevicePayload, type Badge, type Reply, type Status, type Telemetry } from './schemas.js';
import { mayPublish, maySubscribe, parseDeviceTopic, type DeviceTopicKind, type Topics } from './topics.js';

/** Where refused and invalid messages go: a `$` topic, which no wildcard subscription matches and no device may subscribe to. */
const DROPPED_TOPIC = '$ovn/dropped';

/** A device's valid message, for the gateway once the broker has taken it. */
export type Accepted = { from: Client; deviceId: string; topic: string } & (
  | { kind: 'telemetry'; value: Telemetry }
  | { kind: 'status'; value: Status }
  | { kind: 'badge'; value: Badge }
  | { kind: 'reply'; value: Reply }
);

export class Authorization {
  private readonly subscriptions = new WeakMap<Client, Set<string>>();
  private readonly accepted = new WeakMap<object, Accepted>();

  constructor(
    private readonly cfg: BrokerConfig,
    private readonly topics: Topics,
    private readonly auth: Authentication,
    private readonly metrics: BrokerMetrics,
  ) {}

  /** The device message that `authorizePublish` accepted in this packet, handed over once. */
  take(packet: AedesPublishPacket): Accepted | undefined {
    const a = this.accepted.get(packet);
    if (a) this.accepted.delete(packet);
    return a;
  }

  readonly authorizePublish = (client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void => {
    const principal = client ? this.auth.principalOf(client) : undefined;
    if (!client || !principal) {
      // a will left by a connection of an earlier broker run: nobody vouches for it
      drop(packet);
      return done(null);
    }
    const topic = packet.topic;
    if (principal.kind === 'internal') {
      if (!mayPublish(client.id, topic, this.cfg.baseTopic)) {
        this.metrics.reject('publish-denied', client.id, `${client.id}: may not publish on ${topic} ($SYS topics belong to the broker); dropped`, { clientId: client.id, topic });
        drop(packet);
        return done(null);
      }
      this.metrics.counters.in++;
      return done(null);
    }
    const deviceId = principal.deviceId;
    if (!mayPublish(deviceId, topic, this.cfg.baseTopic)) {
      this.metrics.reject('publish-denied', deviceId, `${deviceId}: may not publish on ${topic} (a device publishes only on ${this.topics.base}/devices/${deviceId}/telemetry, status, badge and reply); dropped`, {
        device: deviceId,
        topic,
      });
      drop(packet);
      return done(null);
    }
    const kind = parseDeviceTopic(topic, this.cfg.baseTopic)!.kind as DeviceTopicKind;
    const parsed = parseDevicePayload(kind, packet.payload);
    if (!parsed.ok) {
      this.metrics.reject(parsed.reason, deviceId, `${deviceId}: dropped a message on ${topic}: ${parsed.problem}`, { device: deviceId, topic, problem: parsed.problem });
      drop(packet);
      return done(null);
    }
    // Only the status is state: a retained tap or reply would be replayed to every new subscriber.
    if (packet.retain && kind !== 'status') packet.retain = false;
    this.metrics.counters.in++;
    this.accepted.set(packet, { from: client, deviceId, topic, kind, value: parsed.value } as Accepted);
    done(null);
  };

  readonly authorizeSubscribe = (client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void => {
    const principal = this.auth.principalOf(client);
    const who = principal?.kind === 'device' ? principal.deviceId : client.id;
    if (!principal || !maySubscribe(client.id, sub.topic, this.cfg.baseTopic)) {
      const own = principal?.kind === 'device' ? ` (a device subscribes only to ${this.topics.command(principal.deviceId)})` : '';
      this.metrics.reject('subscribe-denied', who, `${who}: may not subscribe to ${sub.topic}${own}; refused (SUBACK 0x80)`, { clientId: client.id, topic: sub.topic });
      return done(null, null);
    }
    let subs = this.subscriptions.get(client);
    if (!subs) this.subscriptions.set(client, (subs = new Set()));
    if (!subs.has(sub.topic) && subs.size >= this.cfg.maxSubscriptionsPerClient) {
      this.metrics.reject('subscription-cap', who, `${who}: holds ${subs.size} subscriptions already (maxSubscriptionsPerClient); refused ${sub.topic} (SUBACK 0x80)`, { clientId: client.id, topic: sub.topic });
      return done(null, null);
    }
    subs.add(sub.topic);
    done(null, sub);
  };

  /** aedes' `unsubscribe` event: the filters no longer count against the cap. */
  readonly unsubscribed = (topics: string[], client: Client): void => {
    const subs = this.subscriptions.get(client);
    for (const t of topics) subs?.delete(t);
  };
}

/** Acknowledged (so the client does not send it again) and delivered to no one. */
function drop(packet: PublishPacket): void {
  packet.topic = DROPPED_TOPIC;
  packet.retain = false;
}
