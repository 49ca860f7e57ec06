/**
 * A mail catcher for the simulated lab: an SMTP server (plain text, no authentication: for
 * 127.0.0.1 only) that accepts every message and keeps it, and a web page listing what it
 * caught, each message readable as sent (http://<http>/, /messages/<n>.eml). With a directory,
 * each message is also written there as <n>.eml, for a mail client to open.
 */
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

export interface CaughtMail {
  n: number;
  at: string;
  from: string;
  to: string[];
  subject: string;
  raw: string;
}

/** Largest message accepted, in bytes (SIZE in EHLO). */
const MAX_BYTES = 10 * 1024 * 1024;

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A header's value, unfolded; '' when absent. */
function header(raw: string, name: string): string {
  const head = raw.split(/\r?\n\r?\n/, 1)[0]!.replace(/\r?\n[ \t]+/g, ' ');
  return new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? '';
}

export class MailCatcher {
  readonly caught: CaughtMail[] = [];
  private readonly listeners: ((m: CaughtMail) => void)[] = [];

  private constructor(
    private readonly smtp: Server,
    private readonly http: HttpServer,
    private readonly dir: string | null,
  ) {}

  static async start(opts: { smtp: { host: string; port: number }; http: { host: string; port: number }; dir?: string }): Promise<MailCatcher> {
    if (opts.dir) mkdirSync(opts.dir, { recursive: true });
    let catcher: MailCatcher | null = null;
    const smtp = createServer((socket) => catcher!.session(socket));
    const http = createHttpServer((req, res) => catcher!.page(req.url ?? '/', res));
    catcher = new MailCatcher(smtp, http, opts.dir ?? null);
    smtp.listen(opts.smtp.port, opts.smtp.host);
    http.listen(opts.http.port, opts.http.host);
    await Promise.all([once(smtp, 'listening'), once(http, 'listening')]);
    return catcher;
  }

  get smtpAddress(): string {
    const a = this.smtp.address() as { address: string; port: number };
    return `${a.address}:${a.port}`;
  }

  get url(): string {
    const a = this.http.address() as { address: string; port: number };
    return `http://${a.address}:${a.port}`;
  }

  /** Calls `listener` with every message caught from now on. */
  onMail(listener: (m: CaughtMail) => void): void {
    this.listeners.push(listener);
  }

  clear(): void {
    this.caught.length = 0;
  }

  async close(): Promise<void> {
    this.http.closeAllConnections();
    await Promise.all([new Promise((r) => this.smtp.close(r)), new Promise((r) => this.http.close(r))]);
  }

  /** One SMTP conversation (RFC 5321, the commands a client sending mail needs). */
  private session(socket: Socket): void {
    let from = '';
    let to: string[] = [];
    let data: string[] | null = null;
    let size = 0;
    let buffer = '';
    const reply = (text: string) => socket.write(`${text}\r\n`);
    reply('220 ovn-gateway mail catcher ESMTP');
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let i = buffer.indexOf('\r\n'); i >= 0; i = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (data) {
          if (line === '.') {
            this.keep(from, to, data.join('\r\n') + '\r\n');
            [data, from, to] = [null, '', []];
            reply('250 2.0.0 caught');
          } else if ((size += line.length + 2) > MAX_BYTES) {
            [data, from, to] = [null, '', []];
            reply('552 5.3.4 message too big');
          } else data.push(line.startsWith('.') ? line.slice(1) : line);
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') reply(`250-ovn-gateway mail catcher\r\n250-8BITMIME\r\n250 SIZE ${MAX_BYTES}`);
        else if (verb === 'HELO') reply('250 ovn-gateway mail catcher');
        else if (/^MAIL FROM:/i.test(line)) {
          [from, to] = [/<([^>]*)>/.exec(line)?.[1] ?? '', []];
          reply('250 2.1.0 ok');
        } else if (/^RCPT TO:/i.test(line)) {
          to.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
          reply('250 2.1.5 ok');
        } else if (verb === 'DATA') {
          if (to.length === 0) reply('503 5.5.1 RCPT first');
          else {
            [data, size] = [[], 0];
            reply('354 end with <CRLF>.<CRLF>');
          }
        } else if (verb === 'RSET') {
          [from, to] = ['', []];
          reply('250 2.0.0 ok');
        } else if (verb === 'NOOP') reply('250 2.0.0 ok');
        else if (verb === 'QUIT') {
          reply('221 2.0.0 bye');
          socket.end();
        } else reply('502 5.5.2 not implemented');
      }
    });
  }

  private keep(from: string, to: string[], raw: string): void {
    const m: CaughtMail = { n: this.caught.length + 1, at: new Date().toISOString(), from, to, subject: header(raw, 'subject'), raw };
    this.caught.push(m);
    if (this.dir) writeFileSync(join(this.dir, `${String(m.n).padStart(4, '0')}.eml`), raw);
    for (const l of this.listeners) l(m);
  }

  private page(url: string, res: import('node:http').ServerResponse): void {
    const one = /^\/messages\/(\d+)\.eml$/.exec(url);
    if (one) {
      const m = this.caught.find((c) => c.n === Number(one[1]));
      if (!m) return void res.writeHead(404, { 'content-type': 'text/plain' }).end(`no message ${one[1]}`);
      return void res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(m.raw);
    }
    if (url === '/messages.json') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.caught.map(({ raw: _raw, ...m }) => m)));
    const rows = [...this.caught]
      .reverse()
      .map((m) => `<tr><td>${escapeHtml(m.at)}</td><td>${escapeHtml(m.to.join(', '))}</td><td><a href="/messages/${m.n}.eml">${escapeHtml(m.subject || '(no subject)')}</a></td></tr>`)
      .join('');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(
      `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>Mail caught</title><h1>Mail caught (${this.caught.length})</h1><table border="1" cellpadding="4"><tr><th>at</th><th>to</th><th>subject</th></tr>${rows}</table>`,
    );
  }
}
