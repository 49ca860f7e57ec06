/** The simulated PrusaLink printer's commands (see ../control.ts for the language). */
import { SimControl } from '../control.js';
import type { PrusaLinkSim } from './prusalink-sim.js';

export function prusalinkControl(sim: PrusaLinkSim): SimControl {
  const m = sim.machine;
  return new SimControl(
    {
      print: { args: '<file>', help: "start printing a file of the printer's storage, as from its screen", run: (a) => m.startPrint(a.words[0] ?? '') },
      pause: { args: '', help: 'pause the print', run: () => m.pause() },
      resume: { args: '', help: 'resume the paused print', run: () => m.resume() },
      stop: { args: '', help: 'stop the print from the screen', run: () => m.cancel() },
      error: { args: '[message]', help: 'the printer stops with an error (ERROR, the print with it)', run: (a) => m.shutdown(a.rest(0) || 'Thermal runaway: heater bed') },
      'clear-error': { args: '', help: 'the error is dealt with: the printer is IDLE again', run: () => m.restartKlipper() },
      password: { args: '<new password>', help: "set a new PrusaLink password: the gateway's is refused", run: (a) => sim.setPassword(a.words[0] ?? '') },
      truth: { args: '', help: 'print the ground truth of the current or last job as JSON', run: () => JSON.stringify(m.truth()) },
    },
    { address: sim.url, unplug: () => sim.unplug(), replug: () => sim.replug(), close: () => sim.close() },
  );
}
