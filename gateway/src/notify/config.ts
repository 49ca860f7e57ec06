/** Who is told what, through which channels: the `notifications:` section. */
import { z } from 'zod';

const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, dots, dashes and underscores');
const httpUrl = z.string().regex(/^https?:\/\/[^\s/]+(\/\S*)?$/, 'an http:// or https:// URL');
const timeoutMs = z.number().int().min(100).default(10_000).describe('A request without an answer after this many milliseconds fails and is retried.');

const emailChannel = z.strictObject({
  kind: z.literal('email').describe('E-mail over SMTP, with a plain-text and an HTML part.'),
  host: z.string().min(1).describe('SMTP server, e.g. smtp.example.org.'),
  port: z.number().int().min(1).max(65_535).default(587).describe('587 for STARTTLS, 465 for TLS from the start, 25 between servers.'),
  tls: z
    .enum(['starttls', 'implicit', 'none'])
    .default('starttls')
    .describe('starttls: upgrade the connection and refuse to send without it; implicit: TLS from the start (port 465); none: plain text (a local mail catcher only).'),
  user: z.string().min(1).optional().describe('SMTP login; without it no authentication.'),
  password: z.string().optional().describe('SMTP password (keep the config file readable by the service only).'),
  caFile: z.string().min(1).optional().describe("PEM file of the certificate authority that signed the server's certificate (a lab's own mail server), relative to the config file; default: the system's authorities."),
  from: z.string().min(3).describe('Sender, e.g. "Lab gateway <gateway@lab.example.org>".'),
  timeoutMs,
});

const webhookChannel = z.strictObject({
  kind: z.literal('webhook').describe('An HTTP POST of a JSON body, signed with HMAC-SHA256 (docs/notifications.md).'),
  url: httpUrl.describe('Where the JSON is posted.'),
  secret: z.string().min(16).describe('Shared secret of the X-OVN-Signature header: at least 16 characters.'),
  timeoutMs,
});

const ntfyChannel = z.strictObject({
  kind: z.literal('ntfy').describe('A push message through an ntfy server (ntfy.sh or your own), published as JSON.'),
  url: httpUrl.default('https://ntfy.sh').describe('The ntfy server.'),
  topic: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, - and _, at most 64').describe('The topic subscribers follow.'),
  token: z.string().min(1).optional().describe('Access token of a protected topic (Authorization: Bearer).'),
  timeoutMs,
});

const matrixChannel = z.strictObject({
  kind: z.literal('matrix').describe('An m.room.message in a Matrix room, sent with the client-server API.'),
  homeserver: httpUrl.describe('The homeserver, e.g. https://matrix.example.org.'),
  accessToken: z.string().min(1).describe("The sending account's access token."),
  roomId: z.string().regex(/^!\S+:\S+$/, 'a room id such as !abc123:example.org').describe('The room, by its id (not an alias).'),
  timeoutMs,
});

export const channelSchema = z.discriminatedUnion('kind', [emailChannel, webhookChannel, ntfyChannel, matrixChannel]);
export type ChannelConfig = z.output<typeof channelSchema>;

/** "22:00-07:00": from, to (to before from: overnight). */
export const quietHours = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM-HH:MM, e.g. 22:00-07:00');

const timeZone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'an IANA time zone such as Europe/Paris');

const destination = z.strictObject({
  channel: name.describe('A channel named in notifications.channels.'),
  to: z.email().optional().describe("E-mail address, for an email channel (affiliates: their own address in the allow-list instead)."),
  quietHours: quietHours.optional().describe('No message but critical ones between these times (in notifications.timeZone); the others are held and sent when they end. Affiliates set their own on the dashboard.'),
});

export const ROLES = ['affiliate', 'maintainer', 'custodian'] as const;
export type Role = (typeof ROLES)[number];

export const notificationsSchema = z
  .strictObject({
    channels: z.record(name, channelSchema).describe('The channels by name: email, webhook, ntfy, matrix.'),
    recipients: z
      .strictObject({
        affiliate: z.array(destination).default([]).describe('Receipts, switch-off warnings, print jobs finished or failed, refused badges (refusedBadges) to the affiliate concerned; an email channel goes to their address in the allow-list.'),
        maintainer: z.array(destination).default([]).describe('Device faults (thermal runaway…), devices offline, implausible meter readings, maintenance due and overdue, journal storage, ledger backlog and dead letters, clock not synchronised; with their resolution.'),
        custodian: z.array(destination).default([]).describe('Months ready to close and closed (with the statement CSV), corrections.'),
      })
      .default({ affiliate: [], maintainer: [], custodian: [] })
      .describe('Where each role is told, as a list of channels.'),
    offlineAfterMin: z.number().min(0.01).default(10).describe('A device offline longer than this many minutes is reported to the maintainers.'),
    clockUnsyncedAfterMin: z.number().min(0.01).default(30).describe('The wall clock not synchronised (NTP) longer than this many minutes is reported to the maintainers.'),
    overdueFactor: z.number().min(1).default(1.1).describe("A tool's service is overdue (critical) past this many times its service interval (serviceEveryH); due at once."),
    refusedBadges: z.boolean().default(false).describe('Tell an affiliate when a tool refuses their badge, with the reason.'),
    checkEveryS: z.number().min(0.05).default(60).describe('How often maintenance, the clock, the ledger and the months are looked at.'),
    flapping: z
      .strictObject({ windowMin: z.number().min(0).default(30).describe('An incident that opens again within this many minutes of closing is flapping: its changes are not sent, a summary is, this long after the first of them. 0: every change is sent.') })
      .default({ windowMin: 30 })
      .describe('Flapping suppression.'),
    timeZone: timeZone.optional().describe("Quiet hours are in this time zone (default: the system's)."),
    maxAttempts: z.number().int().min(1).default(10).describe('Failed tries after which a notification becomes a dead letter, with the reason (ovn-gateway notify dead-letters).'),
    backoff: z
      .strictObject({
        initialMs: z.number().int().min(10).default(2000).describe('First retry delay, in milliseconds.'),
        maxMs: z.number().int().min(100).default(600_000).describe('Cap of the retry delay, in milliseconds.'),
      })
      .default({ initialMs: 2000, maxMs: 600_000 })
      .describe('A destination that fails waits this long, doubling with jitter up to the cap, before its queue goes on.'),
  })
  .superRefine((cfg, ctx) => {
    for (const role of ROLES) {
      cfg.recipients[role].forEach((d, i) => {
        const path = ['recipients', role, i];
        const channel = cfg.channels[d.channel];
        if (!channel) ctx.addIssue({ code: 'custom', path: [...path, 'channel'], message: `no channel "${d.channel}" (channels: ${Object.keys(cfg.channels).join(', ') || 'none'})` });
        else if (channel.kind === 'email' && role !== 'affiliate' && !d.to) ctx.addIssue({ code: 'custom', path: [...path, 'to'], message: `channel "${d.channel}" sends e-mail: give the address (to)` });
        else if (channel.kind !== 'email' && d.to) ctx.addIssue({ code: 'custom', path: [...path, 'to'], message: `channel "${d.channel}" is ${channel.kind}, not email: it has no address per recipient` });
      });
    }
  });

export type NotificationsConfig = z.output<typeof notificationsSchema>;
