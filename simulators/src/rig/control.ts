/** The simulated rig's commands (see ../control.ts for the language). */
import { SimControl } from '../control.js';
import type { RigSim } from './rig-sim.js';

const SEVERITIES = ['warning', 'error', 'critical'] as const;

export function rigControl(sim: RigSim): SimControl {
  return new SimControl(
    {
      badge: {
        args: '<UID hex>',
        help: "tap a badge on the rig's reader (e.g. badge 04A1B2C3)",
        run: (a) => {
          const uid = a.words[0];
          if (!uid || !/^([0-9a-fA-F]{2}){1,10}$/.test(uid)) throw new Error('badge: expected a UID of 1 to 10 bytes in hex');
          sim.badge(uid);
        },
      },
      busy: { args: 'on|off', help: 'the tool works (only while its relay is on)', run: (a) => sim.setBusy(a.onOff()) },
      power: { args: '<watts>', help: 'power drawn while the tool works', run: (a) => sim.setPower(a.number(0, 'watts')) },
      relay: { args: 'on|off', help: 'switch the relay at the rig itself (a local button)', run: (a) => sim.setRelay(a.onOff()) },
      fault: {
        args: '<code> <warning|error|critical> [text]',
        help: 'raise a fault (error and critical end a session)',
        run: (a) => {
          const [code, severity] = a.words;
          if (!code || !SEVERITIES.includes(severity as (typeof SEVERITIES)[number])) throw new Error(`fault: expected a code and one of ${SEVERITIES.join(', ')}`);
          sim.fault(code, severity as (typeof SEVERITIES)[number], a.rest(2) || 'simulated fault');
        },
      },
      'clear-fault': { args: '<code>', help: 'clear a fault', run: (a) => sim.clearFault(a.words[0] ?? '') },
      telemetry: { args: '', help: 'publish telemetry now', run: () => sim.telemetryNow() },
      drop: { args: '<n>', help: 'lose the next n telemetry messages', run: (a) => sim.drop(a.number(0, 'n')) },
      burst: { args: '<n>', help: 'publish n telemetry messages at once', run: (a) => sim.burst(a.number(0, 'n')) },
      flaky: { args: 'on|off', help: 'lose 30 % of telemetry, drop the connection now and then, send bursts', run: (a) => sim.setFlaky(a.onOff()) },
      malformed: { args: '', help: 'publish a payload that is not JSON and one that is not telemetry', run: () => sim.malformed() },
      disconnect: { args: '', help: 'the connection dies without DISCONNECT (the will fires); reconnects a second later', run: () => sim.dropConnection() },
      reboot: { args: '', help: 'restart: new boot id, counters from zero, relay off', run: () => sim.reboot() },
      truth: { args: '', help: 'print the ground truth as JSON', run: () => JSON.stringify(sim.truth()) },
    },
    { address: sim.topics.telemetry(sim.id), unplug: () => sim.unplug(), replug: () => sim.replug(), close: () => sim.stop() },
  );
}
