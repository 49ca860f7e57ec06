/**
 * Each person's choices: which of their role's channels they are told on, the kinds they do
 * not want (never a critical one), and their quiet hours. Kept in `notify_preferences`, and
 * every change journaled (`notify.preferences`) with who made it.
 */
import { z } from 'zod';
import type { Journal } from '../journal/journal.js';
import { quietHours } from './config.js';
import { OPTIONAL_KINDS } from './rules.js';

export const preferencesSchema = z.strictObject({
  channels: z.array(z.string().min(1)).nullable().default(null).describe("The channels of their role they are told on; null: every one."),
  optOut: z.array(z.enum(OPTIONAL_KINDS)).default([]).describe('Kinds they do not want; critical messages go whatever this says.'),
  quietHours: quietHours.nullable().default(null).describe('HH:MM-HH:MM: only critical messages then; the others wait for the end.'),
});
export type Preferences = z.output<typeof preferencesSchema>;

export const NO_PREFERENCES: Preferences = { channels: null, optOut: [], quietHours: null };

export class PreferencesStore {
  constructor(private readonly journal: Journal) {}

  get(affiliateId: string): Preferences {
    const row = this.journal.prepared('SELECT channels, opt_out AS optOut, quiet_hours AS quietHours FROM notify_preferences WHERE affiliate_id = ?').get(affiliateId) as { channels: string | null; optOut: string; quietHours: string | null } | undefined;
    if (!row) return NO_PREFERENCES;
    return { channels: row.channels === null ? null : (JSON.parse(row.channels) as string[]), optOut: JSON.parse(row.optOut) as Preferences['optOut'], quietHours: row.quietHours };
  }

  /** Replaces a person's choices, journaled with who made them. `channels` must name channels that exist. */
  put(affiliateId: string, p: Preferences, by: string, knownChannels: readonly string[] | null): Preferences {
    const unknown = (p.channels ?? []).filter((c) => knownChannels !== null && !knownChannels.includes(c));
    if (unknown.length) throw new PreferencesError(`channels: no channel ${unknown.map((c) => `"${c}"`).join(', ')} (notifications.channels: ${knownChannels?.join(', ') || 'none'})`);
    this.journal.durably(() => {
      this.journal
        .prepared(`INSERT INTO notify_preferences (affiliate_id, channels, opt_out, quiet_hours, updated_at) VALUES (?, ?, ?, ?, ?)
          ON CONFLICT (affiliate_id) DO UPDATE SET channels = excluded.channels, opt_out = excluded.opt_out, quiet_hours = excluded.quiet_hours, updated_at = excluded.updated_at`)
        .run(affiliateId, p.channels === null ? null : JSON.stringify(p.channels), JSON.stringify(p.optOut), p.quietHours, new Date().toISOString());
      this.journal.record('notify.preferences', null, { affiliateId, ...p, by });
    });
    return this.get(affiliateId);
  }
}

export class PreferencesError extends Error {}

/** Minutes since midnight of `at` in a time zone (the system's when none). */
function minuteOfDay(at: Date, timeZone: string | undefined): number {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(at);
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return get('hour') * 60 + get('minute');
}

/** When the quiet hours `from-to` that `at` falls in end; null when `at` is not in them. */
export function quietUntil(quiet: string | null | undefined, at: Date, timeZone?: string): Date | null {
  if (!quiet) return null;
  const [from, to] = quiet.split('-').map((t) => {
    const [h, m] = t.split(':').map(Number) as [number, number];
    return h * 60 + m;
  }) as [number, number];
  if (from === to) return null;
  const now = minuteOfDay(at, timeZone);
  const inside = from < to ? now >= from && now < to : now >= from || now < to;
  if (!inside) return null;
  const left = (to - now + 1440) % 1440;
  const end = new Date(at.getTime() + left * 60_000);
  end.setUTCSeconds(0, 0);
  // A daylight-saving change before the end moves the wall clock: end when it reads `to` (unless
  // the change skips that time, when the minutes counted are kept).
  const drift = ((to - minuteOfDay(end, timeZone) + 2160) % 1440) - 720;
  if (drift === 0) return end;
  const moved = new Date(end.getTime() + drift * 60_000);
  return moved > at && minuteOfDay(moved, timeZone) === to ? moved : end;
}
