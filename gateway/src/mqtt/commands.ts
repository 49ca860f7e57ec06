/**
 * Commands to devices and their replies: a command goes out on the device's command topic
 * (QoS 1) with a transaction id the broker chooses, and the reply that echoes it settles the
 * command. Transaction ids start with this run's id, so that they never repeat across
 * restarts. A command that waited in a device's persistent session past its timeout is not
 * delivered: the gateway has given up on it, and the device must not act on it late.
 */
import { randomBytes } from 'node:crypto';
import type { AedesPublishPacket, Client } from 'aedes';
import type { Logger } from '../log.js';
import type { BrokerMetrics } from './metrics.js';
import { commandSchema, type CommandInput, type Reply } from './schemas.js';

export class CommandError extends Error {
  constructor(
    message: string,
    readonly deviceId: string,
    readonly reason: 'offline' | 'timeout' | 'stopped',
  ) {
    super(message);
  }
}

interface PendingCommand {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class Commands {
  /** Prefix of this run's command transactions, so that ids never repeat across restarts. */
  private readonly runId = randomBytes(3).toString('hex');
  private txCounter = 0;
  private readonly pending = new Map<string, PendingCommand>();
  /** Command payloads and the monotonic time after which they must not reach the device. */
  private readonly deadlines = new WeakMap<Buffer, number>();

  constructor(
    /** Publishes a command on the device's command topic. */
    private readonly send: (deviceId: string, payload: Buffer) => Promise<void>,
    private readonly timeoutMs: number,
    private readonly metrics: BrokerMetrics,
    private readonly log: Logger,
    /** Monotonic milliseconds. */
    private readonly clock: () => number,
  ) {}

  /** Sends a command to a connected device and resolves with its reply; rejects with a CommandError without one within the timeout. */
  async request(deviceId: string, command: CommandInput, timeoutMs = this.timeoutMs): Promise<Reply> {
    const transaction = `${this.runId}-${++this.txCounter}`;
    const cmd = commandSchema.parse({ ...command, transaction });
    const payload = Buffer.from(JSON.stringify(cmd));
    this.deadlines.set(payload, this.clock() + timeoutMs);
    const key = `${deviceId}\n${transaction}`;
    const reply = new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new CommandError(`no reply from ${deviceId} to ${cmd.command} within ${timeoutMs} ms (transaction ${transaction})`, deviceId, 'timeout'));
      }, timeoutMs);
      this.pending.set(key, { resolve, reject, timer });
    });
    try {
      await this.send(deviceId, payload);
    } catch (err) {
      const p = this.pending.get(key);
      if (p) clearTimeout(p.timer);
      this.pending.delete(key);
      reply.catch(() => {});
      throw err;
    }
    return reply;
  }

  /** A device's reply settles the command waiting for it; one that nothing waits for is counted. */
  settle(deviceId: string, reply: Reply): void {
    const key = `${deviceId}\n${reply.transaction}`;
    const p = this.pending.get(key);
    if (p) {
      this.pending.delete(key);
      clearTimeout(p.timer);
      p.resolve(reply);
    } else {
      this.metrics.counters.unmatchedReplies++;
      this.log.debug({ device: deviceId, transaction: reply.transaction }, 'a reply that no command is waiting for (late, or not ours)');
    }
  }

  /** aedes' `authorizeForward`: a command past its deadline (queued for a device that was away) is not delivered. */
  readonly authorizeForward = (_client: Client, packet: AedesPublishPacket): AedesPublishPacket | null => {
    const deadline = this.deadlines.get(packet.payload as Buffer);
    if (deadline !== undefined && this.clock() > deadline) {
      this.metrics.counters.expiredCommands++;
      return null;
    }
    return packet;
  };

  /** Fails every command still waiting for its reply. */
  stop(): void {
    for (const [key, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new CommandError('the broker stopped before the reply', key.slice(0, key.indexOf('\n')), 'stopped'));
    }
    this.pending.clear();
  }
}
