/**
 * The topic scheme of a lab, under its base topic, and who may publish and subscribe where.
 * Pure: the broker calls these for every PUBLISH and SUBSCRIBE.
 *
 *   <base>/devices/<id>/telemetry      device → gateway   cumulative counters, QoS 1
 *   <base>/devices/<id>/status         device → gateway   retained online/offline with a session counter; the last will
 *   <base>/devices/<id>/badge          device → gateway   one message per tap, never retained
 *   <base>/devices/<id>/reply          device → gateway   the answer to a command, echoing its transaction
 *   <base>/devices/<id>/command        gateway → device   the only topic a device may subscribe to
 *   <base>/devices/<id>/availability   gateway            retained, published only when it changes
 *   <base>/gateway/state               gateway            retained online/offline
 *   <base>/gateway/sessions            gateway            session events
 *   <base>/gateway/health              gateway            retained health summary
 */

/** What a device publishes under its own prefix. */
export const DEVICE_TOPICS = ['telemetry', 'status', 'badge', 'reply'] as const;
export type DeviceTopicKind = (typeof DEVICE_TOPICS)[number];
/** Every topic under a device's prefix, whoever publishes it. */
export type DeviceTopic = DeviceTopicKind | 'command' | 'availability';

/**
 * Client ids of the gateway's own clients start with this. Device ids are lowercase letters,
 * digits and dashes, so no device can take such an id; authentication gives it only to the
 * holder of the broker's in-process secret.
 */
export const INTERNAL_PREFIX = '_gateway';

export const isInternalClient = (clientId: string): boolean => clientId.startsWith(INTERNAL_PREFIX);

/** A device id: also its user name and client id at the broker, and one level of its topics. */
export const DEVICE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface Topics {
  readonly base: string;
  telemetry(deviceId: string): string;
  status(deviceId: string): string;
  badge(deviceId: string): string;
  command(deviceId: string): string;
  reply(deviceId: string): string;
  availability(deviceId: string): string;
  readonly gatewayState: string;
  readonly sessions: string;
  readonly health: string;
  /** Every device's messages of one kind, as a subscription filter. */
  allDevices(kind: DeviceTopic): string;
}

export function topicsFor(base: string): Topics {
  const device = (kind: DeviceTopic) => (deviceId: string) => `${base}/devices/${deviceId}/${kind}`;
  return {
    base,
    telemetry: device('telemetry'),
    status: device('status'),
    badge: device('badge'),
    command: device('command'),
    reply: device('reply'),
    availability: device('availability'),
    gatewayState: `${base}/gateway/state`,
    sessions: `${base}/gateway/sessions`,
    health: `${base}/gateway/health`,
    allDevices: (kind) => `${base}/devices/+/${kind}`,
  };
}

/** `<base>/devices/<id>/<kind>` taken apart, or null for any other topic (or a malformed id). */
export function parseDeviceTopic(topic: string, base: string): { deviceId: string; kind: string } | null {
  const prefix = `${base}/devices/`;
  if (!topic.startsWith(prefix)) return null;
  const rest = topic.slice(prefix.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const deviceId = rest.slice(0, slash);
  const kind = rest.slice(slash + 1);
  if (!DEVICE_ID.test(deviceId) || kind === '' || kind.includes('/')) return null;
  return { deviceId, kind };
}

const DEVICE_PUBLISH: ReadonlySet<string> = new Set(DEVICE_TOPICS);

/**
 * Whether a client may publish on a topic. A device: only its own telemetry, status, badge
 * and reply topics. The gateway's clients: anything but `$SYS/…`, which the broker itself
 * acts on (a publish there can disconnect other clients).
 */
export function mayPublish(clientId: string, topic: string, base: string): boolean {
  if (isInternalClient(clientId)) return !topic.startsWith('$SYS/') && topic !== '$SYS';
  const t = parseDeviceTopic(topic, base);
  return t !== null && t.deviceId === clientId && DEVICE_PUBLISH.has(t.kind);
}

/**
 * Whether a client may subscribe to a topic filter. A device: exactly its own command topic
 * (no wildcards, nothing of other devices, no `$SYS`). The gateway's clients: any filter.
 */
export function maySubscribe(clientId: string, filter: string, base: string): boolean {
  if (isInternalClient(clientId)) return true;
  return DEVICE_ID.test(clientId) && filter === `${base}/devices/${clientId}/command`;
}
