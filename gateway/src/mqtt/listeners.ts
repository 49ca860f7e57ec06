/**
 * Where the embedded broker listens: MQTT over TCP on `listen`, and on the same host over TLS
 * and over WebSocket when configured. Every connection is handed to the broker with the
 * client's address, and kept until it closes, so that stopping can end the ones left open.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { splitHostPort } from '../config/common.js';
import type { Logger } from '../log.js';
import type { BrokerConfig } from './config.js';

/** Each listener's URL, null when it is not listening. */
export interface ListenAddresses {
  tcp: string | null;
  tls: string | null;
  websocket: string | null;
}

export class Listeners {
  private servers: { tcp: NetServer | null; tls: TlsServer | null; http: HttpServer | null; ws: WebSocketServer | null } = { tcp: null, tls: null, http: null, ws: null };
  private readonly sockets = new Set<Duplex>();

  constructor(
    private readonly cfg: BrokerConfig,
    /** TLS files are relative to it. */
    private readonly baseDir: string,
    private readonly log: Logger,
    private readonly accept: (conn: Duplex, address: string) => void,
  ) {}

  async listen(): Promise<void> {
    const { host, port } = splitHostPort(this.cfg.listen);
    const tcp = createNetServer({ noDelay: true }, (socket) => this.connection(socket, socket.remoteAddress ?? 'unknown'));
    this.servers.tcp = tcp;
    await listenOn(tcp, host, port, 'mqtt.listen');
    if (this.cfg.tls) {
      const read = (key: 'cert' | 'key') => {
        const file = resolve(this.baseDir, this.cfg.tls![key]);
        try {
          return readFileSync(file);
        } catch (err) {
          throw new Error(`mqtt.tls.${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
        }
      };
      const tls = createTlsServer({ cert: read('cert'), key: read('key'), noDelay: true });
      tls.on('secureConnection', (socket) => this.connection(socket, socket.remoteAddress ?? 'unknown'));
      // A failed handshake (a client that does not trust the certificate) concerns that client only.
      tls.on('tlsClientError', (err, socket) => this.log.debug({ err: err.message, address: socket.remoteAddress }, 'TLS handshake failed'));
      this.servers.tls = tls;
      await listenOn(tls, host, this.cfg.tls.port, 'mqtt.tls.port');
    }
    if (this.cfg.websocket) {
      const http = createHttpServer((_req, res) => res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket only\n'));
      // One WebSocket message may carry several MQTT packets; the guard still applies to each.
      const ws = new WebSocketServer({ server: http, maxPayload: Math.max(4 * this.cfg.maxPacketBytes, 65_536) });
      ws.on('connection', (socket, req) => {
        const stream = createWebSocketStream(socket);
        stream.on('error', () => {}); // reported through the guard; a reset must not be an uncaught error
        this.connection(stream, req.socket.remoteAddress ?? 'unknown');
      });
      this.servers.http = http;
      this.servers.ws = ws;
      await listenOn(http, host, this.cfg.websocket.port, 'mqtt.websocket.port');
    }
  }

  get addresses(): ListenAddresses {
    const at = (s: NetServer | HttpServer | null, scheme: string, path = '') => {
      const a = s?.address() as AddressInfo | null | undefined;
      if (!a) return null;
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      return `${scheme}://${host}:${a.port}${path}`;
    };
    return { tcp: at(this.servers.tcp, 'mqtt'), tls: at(this.servers.tls, 'mqtts'), websocket: at(this.servers.http, 'ws', '/mqtt') };
  }

  /** Where a client in this process connects: the TCP listener, through loopback when it listens on every address. */
  get localUrl(): string {
    const a = this.servers.tcp?.address() as AddressInfo | null | undefined;
    const host = !a ? splitHostPort(this.cfg.listen).host : a.address === '0.0.0.0' ? '127.0.0.1' : a.address === '::' ? '::1' : a.address;
    const port = a?.port ?? splitHostPort(this.cfg.listen).port;
    return `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  /** Stops listening at once; resolves when every connection has ended (`endConnections` ends those left). */
  async close(): Promise<void> {
    const { tcp, tls, http, ws } = this.servers;
    const closed = [tcp, tls, http].filter((s) => s !== null).map((s) => new Promise<void>((r) => s.close(() => r())));
    ws?.close();
    await Promise.all(closed);
    this.servers = { tcp: null, tls: null, http: null, ws: null };
  }

  endConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  private connection(socket: Duplex, address: string): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    this.accept(socket, address);
  }
}

function listenOn(server: NetServer | HttpServer, host: string, port: number, key: string): Promise<void> {
  return new Promise((resolveListen, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new Error(`${key}: cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address already in use (another broker running? pick another port)' : err.message}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolveListen();
    });
  });
}
