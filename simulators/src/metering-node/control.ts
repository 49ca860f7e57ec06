/** The simulated metering node's commands (see ../control.ts for the language). */
import { MESSAGES, RESET_CAUSE } from '../../../firmware-protocol/src/index.js';
import { SimControl } from '../control.js';
import type { SimTransport } from '../transports.js';
import type { MeteringNodeSim } from './node-sim.js';

export function nodeControl(sim: MeteringNodeSim, transport: SimTransport | null): SimControl {
  return new SimControl(
    {
      badge: {
        args: '<UID hex>',
        help: 'tap a badge (e.g. badge 04A1B2C3)',
        run: (a) => {
          const uid = a.words[0];
          if (!uid || !/^([0-9a-fA-F]{2}){1,10}$/.test(uid)) throw new Error('badge: expected a UID of 1 to 10 bytes in hex');
          sim.badge(uid);
        },
      },
      busy: { args: 'on|off', help: "the tool's busy input", run: (a) => sim.setBusy(a.onOff()) },
      power: { args: '<watts>', help: 'power drawn while the relay is on and the tool busy', run: (a) => sim.setPower(a.number(0, 'watts')) },
      'relay-stuck': { args: 'on|off', help: 'the relay contact stops following the command', run: (a) => sim.setRelayStuck(a.onOff()) },
      fault: { args: '<code> <severity> <text>', help: 'raise a fault', run: (a) => sim.fault(a.number(0, 'code'), a.number(1, 'severity'), a.rest(2) || 'simulated fault') },
      'clear-fault': { args: '<code>', help: 'clear a fault', run: (a) => sim.fault(a.number(0, 'code'), 0, '', false) },
      corrupt: { args: '<n>', help: 'flip a byte in the next n frames', run: (a) => sim.corrupt(a.number(0, 'n')) },
      'lose-ack': { args: '<n>', help: 'flip a byte in the next n ACK frames (the gateway retransmits; the node must not act twice)', run: (a) => sim.loseAcks(a.number(0, 'n')) },
      silence: { args: '<seconds>', help: 'send and hear nothing for a while', run: (a) => sim.silence(a.number(0, 'seconds') * 1000) },
      reboot: {
        args: '[cause]',
        help: `restart: new boot id, counters from zero, relay off (${RESET_CAUSE.join(', ')})`,
        run: (a) => {
          const cause = (a.words[0] ?? 'watchdog') as (typeof RESET_CAUSE)[number];
          if (!RESET_CAUSE.includes(cause)) throw new Error(`reboot: cause must be one of ${RESET_CAUSE.join(', ')}`);
          sim.reboot(cause);
        },
      },
      meter: { args: '', help: 'send a METER frame now', run: () => sim.sendMeter() },
      replay: {
        args: '<TYPE> [boots back]',
        help: 'send again, byte for byte, the last frame of a type (e.g. BADGE), of this boot or an earlier one (replay METER 1: the last boot\'s METER)',
        run: (a) => {
          const type = (a.words[0] ?? '').toUpperCase() as keyof typeof MESSAGES;
          if (!(type in MESSAGES)) throw new Error(`replay: type must be one of ${Object.keys(MESSAGES).join(', ')}`);
          if (!sim.replay(type, a.words[1] === undefined ? 0 : a.number(1, 'boots back'))) throw new Error(`replay: no ${type} frame sent in that boot`);
        },
      },
      spike: {
        args: '<counter> <amount>',
        help: 'one METER claiming more than was counted (energyMwh, relayOnS, activeS, filamentMm), e.g. spike activeS 10000000',
        run: (a) => {
          const counter = a.words[0] as 'energyMwh' | 'relayOnS' | 'activeS' | 'filamentMm';
          if (!['energyMwh', 'relayOnS', 'activeS', 'filamentMm'].includes(counter)) throw new Error('spike: counter must be energyMwh, relayOnS, activeS or filamentMm');
          sim.spike({ [counter]: a.number(1, 'amount') });
        },
      },
      truth: { args: '', help: 'print the ground truth as JSON', run: () => JSON.stringify(sim.truth()) },
    },
    transport,
  );
}
