/**
 * Live control and scenarios for the simulated node. One command language for both:
 * typed on the simulator's standard input, or listed in a scenario file as
 * `- { after: 2000, do: "badge 04A1B2C3" }` (after: milliseconds since the previous step).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { RESET_CAUSE } from '../../../firmware-protocol/src/index.js';
import { ConfigError, formatIssues } from '../../../gateway/src/config/load.js';
import type { MeteringNodeSim } from './node-sim.js';
import type { SimTransport } from '../transports.js';

export const COMMANDS_HELP = `commands:
  badge <UID hex>            tap a badge (e.g. badge 04A1B2C3)
  busy on|off                the tool's busy input
  power <watts>              power drawn while the relay is on and the tool busy
  relay-stuck on|off         the relay contact stops following the command
  fault <code> <severity> <text…> / clear-fault <code>
  corrupt <n>                flip a byte in the next n frames
  silence <seconds>          send and hear nothing for a while
  reboot [cause]             restart the node (counters restart): ${RESET_CAUSE.join(', ')}
  unplug / replug            pull and reconnect the cable
  meter                      send a METER frame now
  truth                      print the ground truth as JSON`;

/** Runs one command; returns text to show, if any. Throws with a readable message on a bad command. */
export async function runCommand(sim: MeteringNodeSim, transport: SimTransport | null, line: string): Promise<string | undefined> {
  const [cmd, ...args] = line.trim().split(/\s+/);
  const onOff = () => {
    if (args[0] !== 'on' && args[0] !== 'off') throw new Error(`${cmd}: expected on or off`);
    return args[0] === 'on';
  };
  const num = (i: number, what: string) => {
    const n = Number(args[i]);
    if (args[i] === undefined || !Number.isFinite(n) || n < 0) throw new Error(`${cmd}: ${what} must be a non-negative number`);
    return n;
  };
  switch (cmd) {
    case undefined:
    case '':
      return undefined;
    case 'badge':
      if (!args[0] || !/^([0-9a-fA-F]{2}){1,10}$/.test(args[0])) throw new Error('badge: expected a UID of 1 to 10 bytes in hex');
      sim.badge(args[0]);
      return undefined;
    case 'busy':
      sim.setBusy(onOff());
      return undefined;
    case 'power':
      sim.setPower(num(0, 'watts'));
      return undefined;
    case 'relay-stuck':
      sim.setRelayStuck(onOff());
      return undefined;
    case 'fault':
      sim.fault(num(0, 'code'), num(1, 'severity'), args.slice(2).join(' ') || 'simulated fault');
      return undefined;
    case 'clear-fault':
      sim.fault(num(0, 'code'), 0, '', false);
      return undefined;
    case 'corrupt':
      sim.corrupt(num(0, 'n'));
      return undefined;
    case 'silence':
      sim.silence(num(0, 'seconds') * 1000);
      return undefined;
    case 'reboot': {
      const cause = (args[0] ?? 'watchdog') as (typeof RESET_CAUSE)[number];
      if (!RESET_CAUSE.includes(cause)) throw new Error(`reboot: cause must be one of ${RESET_CAUSE.join(', ')}`);
      sim.reboot(cause);
      return undefined;
    }
    case 'unplug':
    case 'replug':
      if (!transport) throw new Error(`${cmd}: no transport to ${cmd}`);
      await (cmd === 'unplug' ? transport.unplug() : transport.replug());
      return undefined;
    case 'meter':
      sim.sendMeter();
      return undefined;
    case 'truth':
      return JSON.stringify(sim.truth());
    default:
      throw new Error(`unknown command "${cmd}"\n${COMMANDS_HELP}`);
  }
}

const scenarioSchema = z.array(z.strictObject({ after: z.number().int().min(0).default(0), do: z.string().min(1) }));
export type Scenario = z.output<typeof scenarioSchema>;

export function loadScenario(file: string): Scenario {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(file, [(err as Error).message.split('\n')[0]!]);
  }
  const result = scenarioSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(file, formatIssues(result.error.issues));
  return result.data;
}

/** Plays a scenario; resolves when the last step has run or `signal` aborts. */
export async function playScenario(
  sim: MeteringNodeSim,
  transport: SimTransport | null,
  steps: Scenario,
  onOutput: (text: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  for (const step of steps) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, step.after);
      signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
    if (signal?.aborted) return;
    const out = await runCommand(sim, transport, step.do);
    if (out) onOutput(out);
  }
}
