/** The gateway's health: short for anyone, full (devices, storage, ledger, MQTT broker and bridge) for a token holder. */
import { VERSION } from '../version.js';
import type { AppContext } from './context.js';

/** The health document; `full`: with devices, storage, ledger and MQTT (for a token holder). */
export function health(ctx: AppContext, full: boolean) {
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
  return full ? { ...short, devices, storage, ledger, broker: ctx.broker?.health() ?? null, bridge: ctx.bridge?.health() ?? null } : short;
}
