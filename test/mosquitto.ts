/** A Mosquitto on a loopback port for tests, from Debian's package; tests skip without it on a laptop, never in CI. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { tempDir, waitFor } from './helpers.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';
export const skipWithoutMosquitto = !existsSync(MOSQUITTO) && process.env.CI !== 'true';

export class Mosquitto {
  private proc: ChildProcess | null = null;
  private readonly dir = tempDir('mosquitto');

  constructor(readonly port: number) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const conf = join(this.dir, 'mosquitto.conf');
    // `user` keeps it from switching to the mosquitto user (and losing access to the temp dir) when run as root
    writeFileSync(conf, [`listener ${this.port} 127.0.0.1`, 'allow_anonymous true', 'persistence true', `persistence_location ${this.dir}/`, `user ${userInfo().username}`, ''].join('\n'));
    const proc = spawn(MOSQUITTO, ['-c', conf], { stdio: 'ignore' });
    this.proc = proc;
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          const s = tcpConnect(this.port, '127.0.0.1');
          s.once('connect', () => (s.destroy(), resolve(true)));
          s.once('error', () => resolve(false));
        }),
      10_000,
      `mosquitto listening on ${this.port}`,
    );
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    await exited;
  }
}

export interface Seen {
  topic: string;
  payload: string;
  retain: boolean;
}

/** A subscriber that keeps every message it receives. */
export async function watch(url: string, filter: string): Promise<{ client: MqttClient; seen: Seen[]; on: (topic: string) => Seen[] }> {
  const seen: Seen[] = [];
  const client = await connectAsync(url, { reconnectPeriod: 200 });
  client.on('message', (topic, payload, packet) => seen.push({ topic, payload: payload.toString(), retain: packet.retain }));
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, seen, on: (topic) => seen.filter((m) => m.topic === topic) };
}

/** The retained messages under a filter, as a new subscriber gets them (read until `quietMs` passes without one). */
export async function retained(url: string, filter: string, quietMs = 400): Promise<Map<string, string>> {
  const w = await watch(url, filter);
  let n = -1;
  while (n !== w.seen.length) {
    n = w.seen.length;
    await new Promise((r) => setTimeout(r, quietMs));
  }
  await w.client.endAsync();
  return new Map(w.seen.filter((m) => m.retain).map((m) => [m.topic, m.payload]));
}
