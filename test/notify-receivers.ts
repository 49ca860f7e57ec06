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

/** Whether python3-aiosmtpd is installed. */
export const hasAiosmtpd = (): boolean => spawnSync('python3', ['-c', 'import aiosmtpd'], { stdio: 'ignore' }).status === 0;

const HANDLER = `
import sys, itertools
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
import asyncio, os

out = sys.argv[1]
counter = itertools.count()

class Keep:
    async def handle_DATA(self, server, session, envelope):
        n = next(counter)
        with open(os.path.join(out, f"{n:05d}.eml.tmp"), "wb") as f:
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\\r\\n")
            f.write(b"X-Auth-Login: " + (session.auth_data.login if session.auth_data else b"") + b"\\r\\n")
            f.write(envelope.original_content)
        os.rename(os.path.join(out, f"{n:05d}.eml.tmp"), os.path.join(out, f"{n:05d}.eml"))
        print(f"received {n + 1}", flush=True)
        return "250 OK"

def auth(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"gateway" and auth_data.password == b"s3cret"
    return AuthResult(success=ok)

port = int(sys.argv[2])
c = Controller(Keep(), hostname="127.0.0.1", port=port, authenticator=auth, auth_require_tls=False)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
`;

/** aiosmtpd on a free port with AUTH (user gateway, password s3cret), keeping each message as a file. */
export class SmtpReceiver {
  readonly dir = tempDir('smtp');
  port = 0;
  private child: ChildProcess | null = null;
  private count = 0;
  private listeners: (() => void)[] = [];

  async start(): Promise<this> {
    this.port = await freePort();
    const script = join(this.dir, 'keep.py');
    writeFileSync(script, HANDLER);
    const child = spawn('python3', [script, this.dir, String(this.port)], { stdio: ['pipe', 'pipe', 'inherit'] });
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

  /** The raw messages received so far, in order. */
  messages(): string[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.eml'))
      .sort()
      .map((f) => readFileSync(join(this.dir, f), 'utf8'));
  }

  /** Resolves with the messages once `n` have arrived (the server says so on its output). */
  async received(n: number): Promise<string[]> {
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
