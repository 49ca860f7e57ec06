/** What the HTTP API reads and acts on, given by the composition root; and the lookups every route shares. */
import type { AccessStore } from '../access/store.js';
import type { Billing } from '../billing/billing.js';
import type { Device } from '../devices/device.js';
import type { Journal } from '../journal/journal.js';
import type { OutboxDrain } from '../ledger/outbox.js';
import type { Notifier } from '../notify/outbox.js';
import type { UpstreamBridge } from '../mqtt/bridge.js';
import type { EmbeddedBroker } from '../mqtt/broker.js';
import type { StorageMonitor } from '../journal/storage.js';
import type { ToolSessions } from '../sessions/tool-sessions.js';
import type { PrintQueue } from '../print-jobs/queue.js';
import type { UseType } from '../config/schema.js';
import { HttpError } from './errors.js';

export interface AppContext {
  billing: Billing | null;
  /** The ledger outbox's delivery, when a ledger is configured. */
  ledger: OutboxDrain | null;
  /** Notifications to people, when configured. */
  notifier?: Notifier | null;
  /** The bridge to the upstream MQTT broker, when one is configured. */
  bridge: UpstreamBridge | null;
  /** The embedded MQTT broker, when one is configured. */
  broker: EmbeddedBroker | null;
  /** Whether the journal's storage can record (disk full, read-only); null where nothing watches it. */
  storage: StorageMonitor | null;
  name: string;
  startedAt: Date;
  devices: ReadonlyMap<string, Device>;
  tools: ReadonlyMap<string, ToolSessions>;
  journal: Journal;
  access: AccessStore;
  /** Serve /metrics without a token. */
  metricsPublic: boolean;
  /** Addresses (or CIDR ranges) of reverse proxies whose X-Forwarded-For names the client. */
  trustProxy: readonly string[];
  /** Print jobs from slicers and the API, queued until a session releases them; absent: none are taken. */
  printQueue?: PrintQueue | null;
  /** The config's use types: which an affiliate may choose for their own session. */
  useTypes: readonly UseType[];
}

const known = (m: ReadonlyMap<string, unknown>) => [...m.keys()].join(', ') || 'none';

export function toolOf(ctx: AppContext, id: string): ToolSessions {
  const t = ctx.tools.get(id);
  if (!t) throw new HttpError(404, 'unknown-tool', `no tool "${id}" (known: ${known(ctx.tools)})`);
  return t;
}

export function deviceOf(ctx: AppContext, id: string): Device {
  const d = ctx.devices.get(id);
  if (!d) throw new HttpError(404, 'unknown-device', `no device "${id}" (known: ${known(ctx.devices)})`);
  return d;
}

export function billingOf(ctx: AppContext): Billing {
  if (!ctx.billing) throw new HttpError(404, 'no-billing', 'billing is not configured (the config has no billing section)');
  return ctx.billing;
}

export function ledgerOf(ctx: AppContext): OutboxDrain {
  if (!ctx.ledger) throw new HttpError(404, 'no-ledger', 'no ledger is configured (the config has no ledger section)');
  return ctx.ledger;
}
