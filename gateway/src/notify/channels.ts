/**
 * The channels a notification goes out on: e-mail over SMTP, a signed webhook, ntfy and Matrix.
 * Each sends one message and either returns (delivered) or throws a DeliveryError saying
 * whether trying again can help.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import nodemailer from 'nodemailer';
import type { ChannelConfig } from './config.js';
import { messageHtml, messageText, type Message, type Severity } from './rules.js';

/** One notification to one destination. */
export interface Delivery {
  seq: number;
  /** Stable across tries: receivers deduplicate by it (webhook X-OVN-Delivery, Matrix txnId, e-mail Message-ID). */
  key: string;
  kind: string;
  severity: Severity;
  /** The e-mail address; '' for channels with their own target. */
  address: string;
  message: Message;
  createdAt: string;
  /** Files sent with it, by e-mail only (the month-closed mail's statement CSV). */
  attachments?: { filename: string; contentType: string; content: string | Buffer }[];
}

export class DeliveryError extends Error {
  constructor(
    message: string,
    /** true: trying again cannot help (refused, misconfigured); a dead letter at once. */
    readonly permanent: boolean,
    /** What the receiver asked for (Retry-After, Matrix retry_after_ms). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface Channel {
  send(d: Delivery): Promise<void>;
  close(): void;
}

/** The header names of a signed webhook (docs/notifications.md shows how to verify). */
export const WEBHOOK_HEADERS = { signature: 'x-ovn-signature', timestamp: 'x-ovn-timestamp', delivery: 'x-ovn-delivery' } as const;

/** `sha256=` and the hex HMAC-SHA256, keyed with the secret, of the timestamp, a dot and the body. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** The JSON a webhook receives. */
export function webhookBody(d: Delivery, gateway: string): string {
  return JSON.stringify({ id: d.key, gateway, kind: d.kind, severity: d.severity, createdAt: d.createdAt, ...(d.message.affiliateId ? { affiliateId: d.message.affiliateId } : {}), title: d.message.title, summary: d.message.summary, facts: Object.fromEntries(d.message.facts.map(([k, v]) => [k.trim(), v])), text: messageText(d.message) });
}

const NTFY_PRIORITY: Record<Severity, number> = { critical: 5, warning: 4, info: 3 };
const NTFY_TAG: Record<Severity, string> = { critical: 'rotating_light', warning: 'warning', info: 'information_source' };

/** `baseDir`: what file names in the channel's config are relative to (the config file's directory). */
export function createChannel(cfg: ChannelConfig, gateway: string, baseDir: string): Channel {
  switch (cfg.kind) {
    case 'webhook':
      return httpChannel(cfg.timeoutMs, (d) => {
        const body = webhookBody(d, gateway);
        const timestamp = String(Math.floor(Date.now() / 1000));
        const headers = { 'content-type': 'application/json', [WEBHOOK_HEADERS.timestamp]: timestamp, [WEBHOOK_HEADERS.signature]: webhookSignature(cfg.secret, timestamp, body), [WEBHOOK_HEADERS.delivery]: d.key };
        return { url: cfg.url, method: 'POST', headers, body };
      });
    case 'ntfy':
      // JSON publishing (to the server's root URL) carries UTF-8 titles, which headers cannot.
      return httpChannel(cfg.timeoutMs, (d) => ({
        url: cfg.url.replace(/\/+$/, '') + '/',
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(cfg.token ? { authorization: `Bearer ${cfg.token}` } : {}) },
        body: JSON.stringify({ topic: cfg.topic, title: d.message.title, message: messageText(d.message), priority: NTFY_PRIORITY[d.severity], tags: [NTFY_TAG[d.severity], d.kind] }),
      }));
    case 'matrix':
      // The transaction id is the notification's key: a send repeated after a crash is the same event to the homeserver.
      return httpChannel(cfg.timeoutMs, (d) => ({
        url: `${cfg.homeserver.replace(/\/+$/, '')}/_matrix/client/v3/rooms/${encodeURIComponent(cfg.roomId)}/send/m.room.message/${encodeURIComponent(txnId(d))}`,
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${cfg.accessToken}` },
        body: JSON.stringify({ msgtype: d.severity === 'info' ? 'm.notice' : 'm.text', body: `${d.message.title}\n\n${messageText(d.message)}`, format: 'org.matrix.custom.html', formatted_body: `<h4>${escape(d.message.title)}</h4>${messageHtml(d.message)}` }),
      }));
    case 'email':
      return emailChannel(cfg, gateway, baseDir);
  }
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A transaction id the homeserver sees once per notification and room. */
const txnId = (d: Delivery) => `ovn-${createHash('sha256').update(d.key).digest('hex').slice(0, 32)}`;

interface HttpRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
}

function httpChannel(timeoutMs: number, request: (d: Delivery) => HttpRequest): Channel {
  return {
    async send(d) {
      const r = request(d);
      let res: Response;
      try {
        res = await fetch(r.url, { method: r.method, headers: r.headers, body: r.body, signal: AbortSignal.timeout(timeoutMs) });
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } };
        throw new DeliveryError(`${r.method} ${r.url}: ${e.cause?.code ?? e.message}`, false);
      }
      const text = await res.text().catch(() => '');
      if (res.ok) return;
      const transient = res.status === 408 || res.status === 425 || res.status === 429 || res.status >= 500;
      throw new DeliveryError(`${r.method} ${r.url}: HTTP ${res.status} ${text.slice(0, 200)}`.trim(), !transient, retryAfter(res, text));
    },
    close() {},
  };
}

/** Retry-After in seconds, or Matrix's retry_after_ms in the body. */
function retryAfter(res: Response, body: string): number | undefined {
  const header = Number(res.headers.get('retry-after'));
  if (header > 0) return header * 1000;
  try {
    const ms = (JSON.parse(body) as { retry_after_ms?: unknown }).retry_after_ms;
    return typeof ms === 'number' && ms > 0 ? ms : undefined;
  } catch {
    return undefined;
  }
}

function emailChannel(cfg: Extract<ChannelConfig, { kind: 'email' }>, gateway: string, baseDir: string): Channel {
  const transport = nodemailer.createTransport({
    host: cfg.host,
    port: cfg.port,
    secure: cfg.tls === 'implicit',
    requireTLS: cfg.tls === 'starttls',
    ignoreTLS: cfg.tls === 'none',
    ...(cfg.user ? { auth: { user: cfg.user, pass: cfg.password ?? '' } } : {}),
    ...(cfg.caFile ? { tls: { ca: readFileSync(resolve(baseDir, cfg.caFile)) } } : {}),
    connectionTimeout: cfg.timeoutMs,
    greetingTimeout: cfg.timeoutMs,
    socketTimeout: cfg.timeoutMs,
  });
  return {
    async send(d) {
      if (!d.address) throw new DeliveryError('no e-mail address', true);
      try {
        await transport.sendMail({
          from: cfg.from,
          to: d.address,
          subject: d.message.title,
          text: messageText(d.message),
          html: messageHtml(d.message),
          // stable: a message sent again after a crash can be recognised as the same
          messageId: `<${createHash('sha256').update(`${d.key}\n${d.address}`).digest('hex').slice(0, 32)}@${gateway.replace(/[^A-Za-z0-9.-]/g, '-')}.ovn-gateway>`,
          priority: d.severity === 'critical' ? 'high' : 'normal',
          headers: { 'X-OVN-Kind': d.kind, 'X-OVN-Severity': d.severity },
          attachments: (d.attachments ?? []).map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.content })),
        });
      } catch (err) {
        const e = err as Error & { responseCode?: number };
        // 5xx: the server refuses this message for good (an unknown mailbox, a rejected login)
        throw new DeliveryError(`SMTP ${cfg.host}:${cfg.port}: ${e.message}`, e.responseCode !== undefined && e.responseCode >= 500);
      }
    },
    close() {
      transport.close();
    },
  };
}
