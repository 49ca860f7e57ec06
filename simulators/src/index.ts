/** The simulators as the command line uses them; it loads this module only when a simulator runs, so a production gateway never loads test equipment. */
export { loadScenario, playScenario, type SimControl } from './control.js';
export { labControl, startLab, startSimulators, type RunningLab, type RunningSimulator } from './lab.js';
export { ledgerControl } from './ledger/control.js';
export { LedgerSim } from './ledger/ledger-sim.js';
export { nodeControl } from './metering-node/control.js';
export { MeteringNodeSim } from './metering-node/node-sim.js';
export { moonrakerControl } from './moonraker/control.js';
export { MoonrakerSim } from './moonraker/moonraker-sim.js';
export { prusalinkControl } from './prusalink/control.js';
export { PrusaLinkSim } from './prusalink/prusalink-sim.js';
export { printerControl } from './printer/control.js';
export { PrinterSim } from './printer/printer-sim.js';
export { rfidControl } from './rfid/control.js';
export { Rdm6300Sim } from './rfid/rdm6300-sim.js';
export { rigControl } from './rig/control.js';
export { RigSim } from './rig/rig-sim.js';
export { hasSocat, servePty, serveTcp, type SimTransport, type SimulatedDevice } from './transports.js';
export { buildFirmware, FirmwareNode, firmwareControl } from './metering-node/firmware-node.js';
