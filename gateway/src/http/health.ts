/**
 * The gateway's health: short for anyone; with the devices' states for an affiliate (whether
 * the tools are there, not their jobs or addresses); in full (devices, storage, ledger, MQTT
 * broker and bridge) for the custodian, maintainers and admins.
 */
import { VERSION } from '../version.js';
import type { AppContext } from './context.js';

export function health(ctx: AppContext, detail: 'short' | 'devices' | 'full') {
  const devices = [...ctx.devices.values()].map((d) => d.health());
  const ledger = ctx.ledger?.health() ?? null;
  const storage = ctx.storage?.health() ?? null;
  const short = {
    gateway: ctx.name,
    version: VERSION,
    startedAt: ctx.startedAt.toISOString(),
    uptimeS: Math.round((Date.now() - ctx.startedAt.getTime()) / 1000),
    status: devices.every((d) => d.state === 'online') && !ledger?.alarm && !ledger?.deadLetters && (storage?.state ?? 'ok') === 'ok' ? ('ok' as const) : ('degraded' as const),
  };
  if (detail === 'short') return short;
  if (detail === 'devices') return { ...short, devices: devices.map((d) => ({ id: d.id, state: d.state })) };
  return { ...short, devices, storage, ledger, broker: ctx.broker?.health() ?? null, bridge: ctx.bridge?.health() ?? null };
}
