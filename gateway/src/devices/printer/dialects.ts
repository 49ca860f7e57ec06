/**
 * What differs between printer firmwares, as data: one definition per dialect. A new
 * firmware family is a new definition here (plus, if its lines differ, a parser in
 * responses.ts), not a change to the driver.
 */
import {
  isLineError,
  isOk,
  isStart,
  parseCapability,
  parseFault,
  parseFirmwareLine,
  parsePosition,
  parseCardLost,
  parseCurrentFile,
  parsePrintCounterFilament,
  parseResend,
  parseSdStatus,
  parseTemperatures,
} from './responses.js';

export interface PrinterDialect {
  name: 'marlin' | 'prusa' | 'reprapfirmware';
  label: string;
  /** G90/G91 switch E as well as X/Y/Z (Marlin, Prusa); in RepRapFirmware only M82/M83 do. */
  positioningSetsE: boolean;
  /** The G-code for each thing the driver asks of the printer. */
  gcode: {
    hello: string;
    capabilities: string;
    temperatures: string;
    autoreportTemperatures: ((intervalS: number) => string) | null;
    sdStatus: string;
    autoreportSdStatus: ((intervalS: number) => string) | null;
    /** Sets the interval of the `busy: processing` lines the firmware sends while a long command runs (host keep-alive). */
    hostKeepalive: ((intervalS: number) => string) | null;
    position: string;
    /** Print counter statistics (`Stats: Filament used: …m`). */
    printCounter: string;
    /** The SD file being printed (`Current file: DOS.GCO long name.gcode`); null: the firmware cannot say, or says it in the SD status. */
    currentFile: string | null;
    pauseSd: string;
    resumeSd: string;
    abortSd: string;
    /** Resumes after a halt (Marlin's "stopped" state); a kill() needs a reset. */
    clearHalt: string;
  };
  /** The print counter moves while printing (Marlin); Prusa-Firmware saves it when a print ends. */
  counterLive: boolean;
  /** The SD status names the file on the line before `SD printing byte` (Prusa-Firmware's `M27`). */
  sdStatusNamesFile: boolean;
  /** How its lines read. */
  parse: {
    isOk: typeof isOk;
    isStart: typeof isStart;
    isLineError: typeof isLineError;
    resend: typeof parseResend;
    temperatures: typeof parseTemperatures;
    sdStatus: typeof parseSdStatus;
    position: typeof parsePosition;
    printCounter: typeof parsePrintCounterFilament;
    currentFile: typeof parseCurrentFile;
    cardLost: typeof parseCardLost;
    fault: typeof parseFault;
    firmware: typeof parseFirmwareLine;
    capability: typeof parseCapability;
  };
}

const marlinParse: PrinterDialect['parse'] = {
  isOk,
  isStart,
  isLineError,
  resend: parseResend,
  temperatures: parseTemperatures,
  sdStatus: parseSdStatus,
  position: parsePosition,
  printCounter: parsePrintCounterFilament,
  currentFile: parseCurrentFile,
  cardLost: parseCardLost,
  fault: parseFault,
  firmware: parseFirmwareLine,
  capability: parseCapability,
};

const marlinGcode: PrinterDialect['gcode'] = {
  hello: 'M110 N0',
  capabilities: 'M115',
  temperatures: 'M105',
  autoreportTemperatures: (s) => `M155 S${s}`,
  sdStatus: 'M27',
  autoreportSdStatus: (s) => `M27 S${s}`,
  hostKeepalive: (s) => `M113 S${s}`,
  position: 'M114',
  printCounter: 'M78',
  currentFile: 'M27 C',
  pauseSd: 'M25',
  resumeSd: 'M24',
  abortSd: 'M524',
  clearHalt: 'M999',
};

export const DIALECTS: Record<PrinterDialect['name'], PrinterDialect> = {
  // Marlin's `M27 C` gives the long name with LONG_FILENAME_HOST_SUPPORT, the option `M20 L`
  // needs too: without it, or for a file without a long name, the DOS name is all there is.
  marlin: { name: 'marlin', label: 'Marlin 2.x', positioningSetsE: true, counterLive: true, sdStatusNamesFile: false, gcode: marlinGcode, parse: marlinParse },
  // Prusa-Firmware is Marlin 1.x underneath: its temperature line (one decimal, P: and A:)
  // and Buddy's slash without a space are absorbed by the shared parsers. Its M78 reads the
  // statistics saved when a print ends; its M27 has no C but names the file on a line of its own.
  prusa: { name: 'prusa', label: 'Prusa-Firmware (MK3/MK3S)', positioningSetsE: true, counterLive: false, sdStatusNamesFile: true, gcode: { ...marlinGcode, abortSd: 'M603', currentFile: null }, parse: marlinParse },
  // RepRapFirmware asks for resends with `rs N`, cancels a paused SD print with M0 and has no
  // temperature auto-report, so the driver polls M105, nor a host keep-alive.
  reprapfirmware: {
    name: 'reprapfirmware',
    label: 'RepRapFirmware',
    positioningSetsE: false,
    counterLive: false,
    sdStatusNamesFile: false,
    gcode: { ...marlinGcode, autoreportTemperatures: null, autoreportSdStatus: null, hostKeepalive: null, abortSd: 'M0', clearHalt: 'M999', currentFile: null },
    parse: marlinParse,
  },
};
