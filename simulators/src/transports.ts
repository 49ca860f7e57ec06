/**
 * Putting a simulated device on a wire: a TCP listener (like an ESP serial bridge or ser2net)
 * or a pseudo-terminal made by socat (like a USB serial adapter). Both can be unplugged and
 * replugged, which is how tests exercise the gateway's reconnects.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';

/** The serial side of a simulator: bytes out through the sink, bytes in through feed. */
export interface SimulatedDevice {
  attach(sink: (bytes: Uint8Array) => void): void;
  detach(): void;
  feed(chunk: Uint8Array): void;
}

export interface SimTransport {
  /** Where a gateway reaches the node: a device path or socket://host:port. */
  readonly address: string;
  /** Pulls the cable: the gateway sees the link close and cannot reopen it until replug. */
  unplug(): Promise<void>;
  replug(): Promise<void>;
  close(): Promise<void>;
}

export async function serveTcp(sim: SimulatedDevice, host: string, port: number): Promise<SimTransport & { port: number }> {
  let socket: Socket | null = null;
  let server: Server | null = null;
  let boundPort = port;

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((conn) => {
        if (socket) return void conn.destroy(); // one gateway at a time, like a serial line
        socket = conn;
        conn.setNoDelay(true);
        conn.on('data', (d) => sim.feed(d));
        conn.on('error', () => {});
        conn.on('close', () => {
          if (socket === conn) {
            socket = null;
            sim.detach();
          }
        });
        sim.attach((bytes) => conn.write(bytes));
      });
      s.once('error', reject);
      s.listen(boundPort, host, () => {
        boundPort = (s.address() as { port: number }).port;
        server = s;
        resolve();
      });
    });

  const unplug = async () => {
    sim.detach();
    (socket as Socket | null)?.destroy();
    socket = null;
    const s = server as Server | null;
    server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };

  await listen();
  return {
    get address() {
      return `socket://${host}:${boundPort}`;
    },
    get port() {
      return boundPort;
    },
    unplug,
    replug: listen,
    close: unplug,
  };
}

export function hasSocat(): boolean {
  return ['/usr/bin/socat', '/usr/local/bin/socat', '/bin/socat'].some((p) => existsSync(p));
}

/** A pseudo-terminal at `linkPath` (a symlink, like /dev/serial/by-id/…) whose other end is the simulator. */
export async function servePty(sim: SimulatedDevice, linkPath: string): Promise<SimTransport> {
  let child: ChildProcess | null = null;
  let plugged = false;

  const plug = async () => {
    plugged = true;
    const c = spawn('socat', [`PTY,link=${linkPath},rawer,echo=0,wait-slave`, 'STDIO'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child = c;
    let stderr = '';
    c.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
    c.stdout!.on('data', (d: Buffer) => sim.feed(d));
    c.stdin!.on('error', () => {});
    c.on('exit', () => {
      if (child !== c) return;
      child = null;
      sim.detach();
      // socat ends once it has data to pass after the gateway closed its side. The cable is
      // still in: make the port again, as a USB device re-enumerates; attaching resets the
      // simulated board, as DTR does on a real one.
      if (plugged) void plug().catch(() => {});
    });
    // wait-slave: socat starts relaying once the gateway opens the PTY; attach then is harmless before.
    sim.attach((bytes) => c.stdin!.write(bytes));
    const deadline = Date.now() + 5000;
    while (!existsSync(linkPath)) {
      if (Date.now() > deadline || c.exitCode !== null) throw new Error(`socat did not create ${linkPath}: ${stderr.trim() || 'no message'}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  const unplug = async () => {
    plugged = false;
    const c = child;
    child = null;
    sim.detach();
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });
  };

  await plug();
  return { address: linkPath, unplug, replug: plug, close: unplug };
}
