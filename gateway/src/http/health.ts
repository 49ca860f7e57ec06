/**
 * The gateway's health: short for anyone; with the devices' states for an affiliate (whether
 * the tools are there, not their jobs or addresses); in full (what degrades it, devices,
 * storage, ledger, notifications, MQTT broker and bridge) for the custodian, maintainers and admins.
 */
import { VERSION } from '../version.js';
import type { AppContext } from './context.js';

export function health(ctx: AppContext, detail: 'short' | 'devices' | 'full') {
  const devices = [...ctx.devices.values()].map((d) => d.health());
  const ledger = ctx.ledger?.health() ?? null;
  const storage = ctx.storage?.health() ?? null;
  const notifications = ctx.notifier?.health() ?? null;
  // What degrades it, each named, for a person: a device in fault, unresponsive or offline, the ledger, the storage.
  const problems = [
    ...devices.filter((d) => d.state !== 'online').map((d) => `${d.id}: ${d.state}${d.reason ? ` (${d.reason})` : ''}`),
    ...(ledger?.alarm ? [`ledger: ${ledger.alarm}`] : []),
    ...(ledger?.deadLetters ? [`ledger: ${ledger.deadLetters} dead letter(s)`] : []),
    ...(notifications?.deadLetters ? [`notifications: ${notifications.deadLetters} dead letter(s) (ovn-gateway notify dead-letters)`] : []),
    ...(storage && storage.state !== 'ok' ? [`storage: ${storage.state}`] : []),
  ];
  const short = {
    gateway: ctx.name,
    version: VERSION,
    startedAt: ctx.startedAt.toISOString(),
    uptimeS: Math.round((Date.now() - ctx.startedAt.getTime()) / 1000),
    status: problems.length === 0 ? ('ok' as const) : ('degraded' as const),
  };
  if (detail === 'short') return short;
  if (detail === 'devices') return { ...short, devices: devices.map((d) => ({ id: d.id, state: d.state })) };
  return { ...short, problems, devices, storage, ledger, notifications, broker: ctx.broker?.health() ?? null, bridge: ctx.bridge?.health() ?? null };
}
