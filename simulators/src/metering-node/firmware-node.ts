/**
 * The real metering-node firmware (firmware-protocol/node-firmware) in simavr: the harness
 * process runs the ELF in a simulated ATmega2560 paced to wall time, with its UART0 on a
 * pseudo-terminal a gateway opens like a USB serial port. It takes the same commands as the
 * TypeScript simulator where the hardware allows (badge, busy, power, relay-stuck, corrupt,
 * reboot, truth), so one scenario runs against both.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { SerialPort } from 'serialport';
import { SimControl } from '../control.js';
import type { SimulatedDevice } from '../transports.js';
import type { Truth } from './node-sim.js';

export const FIRMWARE_DIR = join(import.meta.dirname, '..', '..', '..', 'firmware-protocol', 'node-firmware');

/** What the harness knows: the node-sim truth's fields, plus the S0 pulses it sent. */
export type FirmwareTruth = Pick<Truth, 'energyMwh' | 'relayOnS' | 'activeS' | 'reported' | 'relay' | 'indications'> & {
  boots: (Truth['boots'][number] & { pulses: number })[];
  pulses: number;
  framesOut: number;
  framesIn: number;
  corrupted: number;
  simS: number;
};

/**
 * Builds the firmware and the harness with make (gcc-avr, avr-libc, libsimavr-dev); returns
 * their paths, or why they cannot be built here.
 */
export function buildFirmware(): { elf: string; harness: string } | { missing: string } {
  try {
    execFileSync('make', ['-s', '-C', FIRMWARE_DIR, 'all', 'sim'], { stdio: 'pipe' });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    return { missing: `make -C ${FIRMWARE_DIR} all sim failed: ${(e.stderr?.toString() || e.message).trim().split('\n').slice(-3).join(' | ')}` };
  }
  return { elf: join(FIRMWARE_DIR, 'build', 'node.elf'), harness: join(FIRMWARE_DIR, 'build', 'node-sim') };
}

export interface FirmwareNodeOptions {
  elf: string;
  /** The harness binary; by default node-sim next to the ELF (make puts both in build/). */
  harness?: string;
  /** The S0 meter's impulses per kWh, as the firmware was built with (IMP_PER_KWH). */
  impPerKwh?: number;
  /** Also link the pseudo-terminal at this path. */
  link?: string;
}

export class FirmwareNode {
  private readonly answers: ((line: string) => void)[] = [];
  private exited: Promise<void>;

  private constructor(
    private readonly proc: ChildProcessWithoutNullStreams,
    /** The pseudo-terminal the gateway opens. */
    readonly address: string,
    private readonly link: string | undefined,
  ) {
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    createInterface({ input: proc.stdout }).on('line', (line) => {
      if (line.startsWith('ok') || line.startsWith('error ')) this.answers.shift()?.(line);
    });
  }

  static async start(opts: FirmwareNodeOptions): Promise<FirmwareNode> {
    const harness = opts.harness ?? join(dirname(opts.elf), 'node-sim');
    if (!existsSync(harness)) throw new Error(`${harness}: no simavr harness (make -C ${FIRMWARE_DIR} sim)`);
    const proc = spawn(harness, ['--imp-per-kwh', String(opts.impPerKwh ?? 1000), opts.elf], { stdio: 'pipe' });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const pty = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: proc.stdout });
      const onLine = (line: string) => {
        const m = /^pty (\S+)$/.exec(line);
        if (!m) return;
        lines.off('line', onLine);
        lines.close();
        resolve(m[1]!);
      };
      lines.on('line', onLine);
      proc.once('exit', (code) => reject(new Error(`${harness} exited (${code}) before opening its pseudo-terminal: ${stderr.trim()}`)));
    });
    if (opts.link) {
      rmSync(opts.link, { force: true });
      symlinkSync(pty, opts.link);
    }
    return new FirmwareNode(proc, opts.link ?? pty, opts.link);
  }

  /** Runs one harness command; resolves with what it printed after "ok", rejects with its error. */
  run(line: string): Promise<string> {
    if (/[\r\n]/.test(line)) return Promise.reject(new Error('one command a line'));
    return new Promise((resolve, reject) => {
      this.answers.push((answer) => (answer.startsWith('ok') ? resolve(answer.slice(3)) : reject(new Error(answer.slice(6)))));
      this.proc.stdin.write(`${line}\n`);
    });
  }

  /**
   * The node's pseudo-terminal as a device a transport serves (a TCP serial bridge in the
   * simulated lab): opened while a gateway is attached, so bytes flow only then, as on a wire.
   */
  device(): SimulatedDevice {
    let port: SerialPort | null = null;
    return {
      attach: (sink) => {
        const p = (port = new SerialPort({ path: this.address, baudRate: 115_200 }));
        p.on('data', (d: Buffer) => sink(d));
        p.on('error', () => {}); // the harness closed: the transport sees the gateway side go
      },
      detach: () => {
        if (port?.isOpen) port.close();
        port = null;
      },
      feed: (chunk) => void port?.write(Buffer.from(chunk)),
    };
  }

  async truth(): Promise<FirmwareTruth> {
    return JSON.parse(await this.run('truth')) as FirmwareTruth;
  }

  async close(): Promise<void> {
    if (this.link) rmSync(this.link, { force: true });
    this.proc.stdin.end();
    this.proc.kill();
    await this.exited;
  }
}

/** The harness's commands as a simulator control: typed on stdin or played from a scenario file. */
export function firmwareControl(node: FirmwareNode): SimControl {
  const forward = (args: string, help: string) => ({ args, help, run: async (a: { cmd: string; words: string[] }) => (await node.run([a.cmd, ...a.words].join(' '))) || undefined });
  return new SimControl(
    {
      badge: forward('<10 hex digits>', 'hold an EM4100 card at the RDM6300 for 0.3 s'),
      busy: forward('on|off', "the tool's busy input"),
      power: forward('<watts>', 'power drawn while the relay is closed and the tool busy (S0 pulses at that rate)'),
      'relay-stuck': forward('on|off', 'the relay contact stops following the coil'),
      corrupt: forward('<n>', 'flip a byte in the next n frames from the node'),
      'lose-ack': forward('<n>', 'flip a byte in the next n ACK frames from the node'),
      reboot: forward('[external|power-on|brown-out|watchdog]', 'press reset, cycle power, dip the supply, or stall the main loop until the watchdog resets the board'),
      truth: forward('', 'print the ground truth as JSON'),
    },
    null,
  );
}
