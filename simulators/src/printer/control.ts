/** The simulated printer's commands (see ../control.ts for the language). */
import { SimControl } from '../control.js';
import type { SimTransport } from '../transports.js';
import type { PrinterSim } from './printer-sim.js';

export function printerControl(sim: PrinterSim, transport: SimTransport | null): SimControl {
  return new SimControl(
    {
      'sd-print': { args: '<file>', help: "start printing a file from the SD card, as from the printer's menu", run: (a) => sim.startSdPrint(a.words[0] ?? '') },
      'sd-stop': { args: '', help: "stop the SD print from the printer's menu", run: () => sim.stopSdPrint() },
      'sd-release': { args: '', help: 'the SD card is pulled out mid-print: "SD card released", the print stops', run: () => sim.releaseSdCard() },
      checksum: { args: '<n>', help: 'the next n numbered lines arrive with a bad checksum (resend requests)', run: (a) => sim.injectChecksumErrors(a.number(0, 'n')) },
      'resend-without-ok': { args: 'on|off', help: 'resend requests without the trailing ok (older Marlin)', run: (a) => sim.setResendWithoutOk(a.onOff()) },
      noise: { args: '<n>', help: 'line noise: every n-th numbered line arrives with a byte changed (0: none)', run: (a) => sim.setLineNoise(a.number(0, 'n')) },
      'drop-ok': { args: '<n>', help: 'swallow the ok of the next n commands', run: (a) => sim.dropOk(a.number(0, 'n')) },
      silence: { args: '<seconds>', help: 'send and hear nothing for a while', run: (a) => sim.silence(a.number(0, 'seconds') * 1000) },
      reset: { args: '', help: 'the board resets: start banner, job lost', run: () => sim.reset() },
      'reset-on-open': { args: 'on|off', help: 'whether opening the port resets the board (off: like many boards with native USB)', run: (a) => sim.setResetOnOpen(a.onOff()) },
      runaway: { args: '', help: 'thermal runaway: the firmware halts, silent, until M999 or a reset', run: () => sim.thermalRunaway() },
      truth: { args: '', help: 'print the ground truth as JSON (filament extruded, print time)', run: () => JSON.stringify(sim.truth()) },
    },
    transport,
  );
}
