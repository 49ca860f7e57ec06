/** The simulated Moonraker host's commands (see ../control.ts for the language). */
import { SimControl } from '../control.js';
import type { MoonrakerSim } from './moonraker-sim.js';

export function moonrakerControl(sim: MoonrakerSim): SimControl {
  const k = sim.klipper;
  return new SimControl(
    {
      print: { args: '<file>', help: "start printing a file of the host's gcodes folder, as from Mainsail or the printer's screen", run: (a) => k.startPrint(a.words[0] ?? '') },
      pause: { args: '', help: 'pause the print', run: () => k.pause() },
      resume: { args: '', help: 'resume the paused print', run: () => k.resume() },
      cancel: { args: '', help: 'cancel the print', run: () => k.cancel() },
      files: { args: '', help: 'list the gcodes folder', run: () => Object.keys(k.files).join('\n') },
      shutdown: { args: '[message]', help: 'Klipper shuts down (an MCU error, an emergency stop): the print stops, the printer is in fault', run: (a) => k.shutdown(a.rest(0) || "MCU 'mcu' shutdown: Timer too close") },
      'firmware-restart': { args: '', help: 'FIRMWARE_RESTART: Klipper starts afresh and is ready again', run: () => k.restartKlipper() },
      'restart-host': { args: '<seconds>', help: 'Moonraker restarts: connections close, it is away that long, Klipper prints on', run: (a) => sim.restartHost(a.number(0, 'seconds') * 1000) },
      key: { args: '<new key>|none', help: 'change the API key Moonraker requires (none: trust every client); new connections with the old key are refused', run: (a) => sim.setApiKey(a.words[0] === 'none' || !a.words[0] ? null : a.words[0]) },
      history: { args: '', help: "print Moonraker's job history as JSON", run: () => JSON.stringify(k.history.slice(0, 10)) },
      truth: { args: '', help: 'print the ground truth of the current or last job as JSON (filament extruded, what Klipper counts)', run: () => JSON.stringify(k.truth()) },
    },
    // the network cable: unplug drops every connection and refuses new ones until replug
    { address: sim.url, unplug: () => sim.unplug(), replug: () => sim.replug(), close: () => sim.close() },
  );
}
