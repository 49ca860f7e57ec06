/**
 * Real receivers for notifications, started by the tests: an HTTP server that keeps every
 * request (a webhook receiver, an ntfy server, a Matrix homeserver, each answering as told),
 * and an SMTP server (aiosmtpd) that writes every message it accepts to a directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { join } from 'node:path';
import { freePort, tempDir } from './helpers.js';

export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An HTTP server keeping each request; `answer` decides the status (200 by default). */
export class HttpReceiver {
  readonly requests: Received[] = [];
  answer: (r: Received) => { status: number; body?: string; headers?: Record<string, string> } = () => ({ status: 200, body: '{}' });
  private server: Server | null = null;
  private listeners: ((r: Received) => void)[] = [];
  url = '';

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r: Received = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.requests.push(r);
        const a = this.answer(r);
        res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers }).end(a.body ?? '{}');
        for (const l of this.listeners) l(r);
      });
    });
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }

  /** Resolves once `n` requests in all have arrived. */
  async received(n: number): Promise<Received[]> {
    if (this.requests.length < n) {
      await new Promise<void>((resolve) => {
        const l = () => {
          if (this.requests.length >= n) {
            this.listeners = this.listeners.filter((x) => x !== l);
            resolve();
          }
        };
        this.listeners.push(l);
      });
    }
    return this.requests;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    this.server.close();
    this.server = null;
  }
}

/** A python3 with aiosmtpd (the Debian package's is the system's, which a python3 on the PATH may hide), or null. */
export const AIOSMTPD_PYTHON = ['/usr/bin/python3', 'python3'].find((py) => spawnSync(py, ['-c', 'import aiosmtpd'], { stdio: 'ignore' }).status === 0) ?? null;

const HANDLER = `
import sys, os, json, ssl, itertools, email, email.policy
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

out, port, cert, key, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
counter = itertools.count(1)

class Keep:
    async def handle_DATA(self, server, session, envelope):
        n = next(counter)
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        parts = {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart() and p.get_filename() is None}
        attachments = [{"filename": p.get_filename(), "contentType": p.get_content_type(), "content": p.get_content() if p.get_content_maintype() == "text" else None} for p in msg.walk() if not p.is_multipart() and p.get_filename() is not None]
        kept = {
            "envelopeTo": envelope.rcpt_tos, "login": session.auth_data.login.decode() if session.auth_data else None,
            # STARTTLS, or TLS from the first byte (implicit, port 465 style)
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            "attachments": attachments,
            "headers": {k.lower(): str(v) for k, v in msg.items()},
            "contentType": msg.get_content_type(), "text": parts.get("text/plain"), "html": parts.get("text/html"),
        }
        with open(os.path.join(out, f"{n:05d}.json"), "w") as f:
            json.dump(kept, f)
        print(f"received {n}", flush=True)
        return "250 OK"

def auth(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=isinstance(auth_data, LoginPassword) and auth_data.login == b"gateway" and auth_data.password == b"s3cret", handled=False, auth_data=auth_data)

tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(cert, key)
if mode == "implicit":
    # TLS from the first byte: a client that speaks plain SMTP gets no answer it can read
    c = Controller(Keep(), hostname="127.0.0.1", port=port, authenticator=auth, ssl_context=tls, auth_require_tls=False)
else:
    c = Controller(Keep(), hostname="127.0.0.1", port=port, authenticator=auth, tls_context=tls, require_starttls=True, auth_require_tls=True)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
`;

/** A message as the SMTP server received it, parsed by Python's email package. */
export interface Mail {
  envelopeTo: string[];
  login: string | null;
  /** Whether it came over TLS (STARTTLS, or implicit). */
  tls: boolean;
  /** Parts with a file name: text ones with their content. */
  attachments: { filename: string; contentType: string; content: string | null }[];
  headers: Record<string, string>;
  contentType: string;
  text: string | null;
  html: string | null;
}

/**
 * aiosmtpd on a free port that requires STARTTLS (with a certificate made for it, `ca` is its
 * PEM) and AUTH (user gateway, password s3cret), keeping each message parsed as a JSON file.
 * `implicit`: TLS from the first byte instead (SMTPS, port 465 style).
 */
export class SmtpReceiver {
  constructor(private readonly mode: 'starttls' | 'implicit' = 'starttls') {}

  readonly dir = tempDir('smtp');
  port = 0;
  /** The PEM file of the server's certificate, to trust. */
  ca = '';
  private child: ChildProcess | null = null;
  private count = 0;
  private listeners: (() => void)[] = [];

  async start(): Promise<this> {
    this.port = await freePort();
    const script = join(this.dir, 'keep.py');
    writeFileSync(script, HANDLER);
    const [cert, key] = [join(this.dir, 'cert.pem'), join(this.dir, 'key.pem')];
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`openssl: ${made.stderr}`);
    this.ca = cert;
    const child = spawn(AIOSMTPD_PYTHON ?? 'python3', [script, this.dir, String(this.port), cert, key, this.mode], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, PYTHONWARNINGS: 'ignore' } });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line === 'ready') resolve();
        const m = /^received (\d+)$/.exec(line);
        if (m) {
          this.count = Number(m[1]);
          for (const l of this.listeners) l();
        }
      });
      child.on('exit', (code) => reject(new Error(`aiosmtpd exited with ${code}`)));
    });
    return this;
  }

  /** The messages received so far, in order. */
  messages(): Mail[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as Mail);
  }

  /** Resolves with the messages once `n` have arrived (the server says so on its output). */
  async received(n: number): Promise<Mail[]> {
    if (this.count < n) {
      await new Promise<void>((resolve) => {
        const l = () => {
          if (this.count < n) return;
          this.listeners = this.listeners.filter((x) => x !== l);
          resolve();
        };
        this.listeners.push(l);
      });
    }
    return this.messages();
  }

  stop(): void {
    this.child?.kill('SIGTERM');
    this.child = null;
  }
}

/** A billing.charge event's data, as Billing writes it: a session of 1 h 30 min costing 12.34 CAD. */
export const charge = (sessionId: string, affiliateId = 'ada') => ({
  sessionId,
  affiliateId,
  useType: 'community',
  startedAt: '2026-12-04T10:00:00.000Z',
  endedAt: '2026-12-04T11:30:00.000Z',
  period: '2026-12',
  currency: 'CAD',
  inputs: { usage: { durationS: 5400, filamentG: 42.5, energyWh: 180.25 } },
  price: { total: 1234, cash: true },
  parts: [
    { account: 'material', amount: 850 },
    { account: 'maintenance', amount: 192 },
    { account: 'co-owner', affiliateId: 'bo', amount: 192 },
  ],
});
