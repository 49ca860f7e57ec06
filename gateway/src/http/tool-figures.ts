/**
 * A tool's figures as of now, for what other systems show of it (Home Assistant, Prometheus):
 * whether it is reachable and in use, who uses it (a display name, never a badge uid), what
 * the running session costs and lasts, its power and energy, its printer's temperatures, job
 * progress and filament. Read from the parts when asked; nothing is stored.
 */
import type { Billing } from '../billing/billing.js';
import type { Device } from '../devices/device.js';
import { isToolSwitch, type ToolMeter, type ToolPrinter } from '../devices/tool-io.js';
import type { ToolSessions } from '../sessions/tool-sessions.js';
import type { AccessStore } from '../access/store.js';
import { costOf } from './views.js';

/** What is shown for the current user when nobody uses the tool or the affiliate has no name. */
export const NOBODY = '—';

export interface ToolFigures {
  /** The tool's switch answers. */
  online: boolean;
  inUse: boolean;
  blocked: boolean;
  /** The affiliate's display name, or NOBODY. */
  user: string;
  /** The running session's cost as if it ended now, in major units; null: not billed or no session. */
  cost: number | null;
  currency: string | null;
  sessionS: number;
  powerW: number | null;
  /** The meter's energy total over every boot of the device, Wh; null: no meter. */
  energyWh: number | null;
  hotendC: number | null;
  bedC: number | null;
  /** The running job's progress, 0–100; null: no job (or no printer). */
  progressPct: number | null;
  /** Filament metered since the gateway started, g; null: no printer. */
  filamentG: number | null;
  material: string | null;
}

export interface FigureSources {
  devices: ReadonlyMap<string, Device>;
  billing: Billing | null;
  access: Pick<AccessStore, 'get'>;
}

const num = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const round = (x: number | null, digits: number): number | null => (x === null ? null : Math.round(x * 10 ** digits) / 10 ** digits);

/** The tool's devices by role, as the tool's config names them. */
export function toolDevices(src: Pick<FigureSources, 'devices'>, t: ToolSessions): { switch: Device | null; meter: Device | null; printer: Device | null } {
  const c = t.cfg;
  const get = (id: string | undefined) => (id ? (src.devices.get(id) ?? null) : null);
  return { switch: get(c.switch ?? c.node), meter: get(c.meter ?? c.node), printer: get(c.printer) };
}

export function toolFigures(src: FigureSources, t: ToolSessions): ToolFigures {
  const d = toolDevices(src, t);
  const u = t.current();
  const status = t.status();
  const meter = d.meter as (Device & Partial<ToolMeter>) | null;
  const meterDetail = meter?.health().detail;
  const printer = d.printer as (Device & Partial<ToolPrinter>) | null;
  const printerDetail = printer?.health().detail;
  const temps = printerDetail?.temperatures as { hotend?: { actual: number }; bed?: { actual: number }; tools?: { actual: number }[] } | null | undefined;
  const job = printerDetail?.job as { state?: string; progress?: number } | null | undefined;
  const cost = u ? costOf(src.billing, u) : null;
  const energyMwh = meter?.meterTotals?.energyMwh;
  const filamentMm = printer?.filamentCountersMm?.reduce((a, b) => a + b, 0);
  return {
    online: d.switch !== null && isToolSwitch(d.switch) && d.switch.health().state === 'online',
    inUse: u !== null,
    blocked: status.status === 'blocked',
    user: u ? (src.access.get(u.affiliateId)?.name ?? NOBODY) : NOBODY,
    cost: cost ? Number(cost.total) : u && src.billing?.cfg.tools[t.cfg.id] ? 0 : null,
    currency: src.billing?.cfg.currency ?? null,
    sessionS: u ? Math.round(u.durationS) : 0,
    powerW: round(num(meterDetail?.powerW), 1),
    energyWh: typeof energyMwh === 'number' ? round(energyMwh / 1000, 3) : null,
    hotendC: round(num(temps?.hotend?.actual ?? temps?.tools?.[0]?.actual), 1),
    bedC: round(num(temps?.bed?.actual), 1),
    progressPct: job && (job.state === 'printing' || job.state === 'paused') ? round((num(job.progress) ?? 0) * 100, 1) : null,
    filamentG: printer && typeof filamentMm === 'number' && printer.gramsOf ? round(printer.gramsOf(filamentMm), 2) : null,
    material: printer ? (((printerDetail?.filament as { material?: unknown } | undefined)?.material as string | undefined) ?? null) : null,
  };
}
