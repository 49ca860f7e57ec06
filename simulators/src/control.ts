/**
 * Live control and scenarios for simulators. One command language for both: typed on the
 * simulator's standard input, or listed in a scenario file as
 * `- { after: 2000, do: "badge 04A1B2C3" }` (after: milliseconds since the previous step).
 * Each simulator brings its own command table; pulling the cable is common to all.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { loadScenario, type Scenario } from '../../gateway/src/config/scenario.js';
import type { SimTransport } from './transports.js';

export { loadScenario, type Scenario };

export interface Command {
  /** e.g. `<UID hex>` */
  args: string;
  help: string;
  /** Gets the words after the command; returns text to show, if any; throws a readable Error on bad input. */
  run(args: Args): void | string | Promise<void | string>;
}

/** The words after a command, with checked conversions whose errors name the command. */
export class Args {
  constructor(
    readonly cmd: string,
    readonly words: string[],
  ) {}

  onOff(i = 0): boolean {
    const w = this.words[i];
    if (w !== 'on' && w !== 'off') throw new Error(`${this.cmd}: expected on or off`);
    return w === 'on';
  }

  number(i: number, what: string): number {
    const n = Number(this.words[i]);
    if (this.words[i] === undefined || !Number.isFinite(n) || n < 0) throw new Error(`${this.cmd}: ${what} must be a non-negative number`);
    return n;
  }

  rest(from: number): string {
    return this.words.slice(from).join(' ');
  }
}

export class SimControl {
  readonly commands: Record<string, Command>;

  constructor(commands: Record<string, Command>, transport: SimTransport | null) {
    this.commands = {
      ...commands,
      unplug: { args: '', help: 'pull the cable (the PTY disappears / the TCP port closes)', run: () => this.need(transport, 'unplug').unplug() },
      replug: { args: '', help: 'put the cable back', run: () => this.need(transport, 'replug').replug() },
    };
  }

  get help(): string {
    const rows = Object.entries(this.commands).map(([name, c]) => [`${name} ${c.args}`.trim(), c.help]);
    const w = Math.max(...rows.map((r) => r[0]!.length));
    return 'commands:\n' + rows.map(([a, h]) => `  ${a!.padEnd(w)}  ${h}`).join('\n');
  }

  /** Runs one command line; returns text to show, if any. */
  async run(line: string): Promise<string | undefined> {
    const [cmd, ...words] = line.trim().split(/\s+/);
    if (!cmd) return undefined;
    const command = this.commands[cmd];
    if (!command) throw new Error(`unknown command "${cmd}"\n${this.help}`);
    return (await command.run(new Args(cmd, words))) ?? undefined;
  }

  private need(transport: SimTransport | null, cmd: string): SimTransport {
    if (!transport) throw new Error(`${cmd}: this simulator has no cable to pull`);
    return transport;
  }
}

/** Plays a scenario; resolves when the last step has run or `signal` aborts. */
export async function playScenario(control: SimControl, steps: Scenario, onOutput: (text: string) => void, signal?: AbortSignal): Promise<void> {
  for (const step of steps) {
    // the timer takes its abort listener away when it fires: a long scenario leaves none behind
    const aborted = await sleep(step.after, false, { signal }).catch(() => true);
    if (aborted) return;
    const out = await control.run(step.do);
    if (out) onOutput(out);
  }
}
