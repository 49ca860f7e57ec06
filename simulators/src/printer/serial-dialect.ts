/**
 * How the simulated firmware talks, pure: what Marlin 2.x or Prusa-Firmware prints (banner,
 * M115 capabilities, temperatures, positions, statistics) and how it checks a numbered,
 * checksummed line from the host.
 */
import { AMBIENT, type Heater } from './physical-model.js';

export type PrinterDialect = 'marlin' | 'prusa';

export function bannerLines(dialect: PrinterDialect): string[] {
  const firmware =
    dialect === 'prusa'
      ? ['echo: 3.13.3-7094', 'echo: Last Updated: Feb 19 2024 12:39:48 | Author: (none, default config)']
      : ['echo:Marlin 2.1.2.1', 'echo: Last Updated: 2023-07-31 | Author: (none, default config)', 'echo:Compiled: Feb  4 2024'];
  return ['start', ...firmware, 'echo: Free Memory: 2823  PlannerBufferBytes: 1232', 'echo:SD card ok'];
}

/** M115: the firmware line, then one `Cap:` line per capability. */
export function firmwareLines(dialect: PrinterDialect, autoreport: boolean, advancedOk = false): string[] {
  const firmware =
    dialect === 'prusa'
      ? 'FIRMWARE_NAME:Prusa-Firmware 3.13.3 based on Marlin FIRMWARE_URL:https://github.com/prusa3d/Prusa-Firmware PROTOCOL_VERSION:1.0 MACHINE_TYPE:Prusa i3 MK3S EXTRUDER_COUNT:1 UUID:00000000-0000-0000-0000-000000000000'
      : 'FIRMWARE_NAME:Marlin 2.1.2.1 (Feb  4 2024 12:00:00) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin PROTOCOL_VERSION:1.0 MACHINE_TYPE:Simulated Printer EXTRUDER_COUNT:1 UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff';
  const caps: [string, boolean][] = [
    ['SERIAL_XON_XOFF', false],
    ['BINARY_FILE_TRANSFER', false],
    ['EEPROM', true],
    ['AUTOREPORT_TEMP', autoreport],
    ['PROGRESS', false],
    ['PRINT_JOB', true],
    ['AUTOLEVEL', true],
    ['Z_PROBE', true],
    ['EMERGENCY_PARSER', true],
    ['AUTOREPORT_SD_STATUS', autoreport],
    ['THERMAL_PROTECTION', true],
    ['ADVANCED_OK', advancedOk],
  ];
  return [firmware, ...caps.map(([k, v]) => `Cap:${k}:${v ? 1 : 0}`)];
}

/** M105 and its auto-report; Prusa prints one decimal, the PINDA probe (P:) and the ambient (A:), a little above the room. */
export function temperatureLine(dialect: PrinterDialect, { hotend: h, bed: b }: { hotend: Heater; bed: Heater }): string {
  if (dialect === 'prusa') {
    const f = (x: number) => x.toFixed(1);
    return `T:${f(h.actual)} /${f(h.target)} B:${f(b.actual)} /${f(b.target)} T0:${f(h.actual)} /${f(h.target)} @:${h.target ? 80 : 0} B@:${b.target ? 60 : 0} P:${f(AMBIENT + 3)} A:${f(AMBIENT + 8)}`;
  }
  const f = (x: number) => x.toFixed(2);
  return `T:${f(h.actual)} /${f(h.target)} B:${f(b.actual)} /${f(b.target)} @:${h.target ? 127 : 0} B@:${b.target ? 127 : 0}`;
}

/**
 * M27 and its auto-report. Prusa-Firmware prints the file's long name before the byte count and
 * the minutes printed (`h:mm`) after it.
 */
export function sdStatusLines(dialect: PrinterDialect, printing: { file: string; byte: number; total: number } | null): string[] {
  if (!printing) return ['Not SD printing'];
  const bytes = `SD printing byte ${printing.byte}/${printing.total}`;
  return dialect === 'prusa' ? [printing.file, bytes, '0:00'] : [bytes];
}

/** M114: the logical position, then the stepper counts. */
export function positionLine(p: { x: number; y: number; z: number }, e: number): string {
  return `X:${p.x.toFixed(2)} Y:${p.y.toFixed(2)} Z:${p.z.toFixed(2)} E:${e.toFixed(2)} Count X:${Math.round(p.x * 80)} Y:${Math.round(p.y * 80)} Z:${Math.round(p.z * 400)}`;
}

/**
 * M78: print statistics. Marlin prints the filament in metres as a float (two decimals);
 * Prusa-Firmware one line from its EEPROM, minutes and whole centimetres.
 */
export function statsLines(dialect: PrinterDialect, filamentUsedMm: number): string[] {
  if (dialect === 'prusa') return [`STATS 0 min ${Math.trunc(filamentUsedMm / 10)} cm.`];
  return ['Stats: Prints: 1, Finished: 0, Failed: 0', 'Stats: Total time: 0s, Longest job: 0s', `Stats: Filament used: ${(filamentUsedMm / 1000).toFixed(2)}m`];
}

export type LineCheck =
  | { kind: 'command'; line: string; n: number | null }
  | { kind: 'repeat' }
  | { kind: 'bad-checksum' | 'refused'; error: string };

/**
 * A line from the host: `N12 G1 X5*87` is checked (the XOR of every byte before `*`) and must
 * follow the last line (M110 sets the number); a repeat of the last line is dropped; a line
 * without a number is taken as it is. `damaged`: a numbered line fails its checksum whatever
 * it holds (fault injection).
 */
export function checkLine(raw: string, lastLine: number, damaged: boolean): LineCheck {
  const m = /^N(-?\d+)\s+(.*?)\*(\d+)\s*$/.exec(raw);
  if (!m) {
    if (/^N-?\d+/.test(raw)) return { kind: 'refused', error: `Error:No Checksum with line number, Last Line: ${lastLine}` };
    // the tail of a line cut short (a receive buffer emptied or overflowed): refused, never run
    if (raw.includes('*')) return { kind: 'refused', error: `Error:No Line Number with checksum, Last Line: ${lastLine}` };
    return { kind: 'command', line: raw, n: null };
  }
  const n = Number(m[1]);
  let sum = 0;
  for (let i = 0, end = raw.lastIndexOf('*'); i < end; i++) sum ^= raw.charCodeAt(i);
  if (damaged || sum !== Number(m[3])) return { kind: 'bad-checksum', error: `Error:checksum mismatch, Last Line: ${lastLine}` };
  const setsNumber = /^M110\b/.test(m[2]!);
  if (n === lastLine && !setsNumber) return { kind: 'repeat' };
  if (n !== lastLine + 1 && !setsNumber) return { kind: 'refused', error: `Error:Line Number is not Last Line Number+1, Last Line: ${lastLine}` };
  return { kind: 'command', line: m[2]!, n };
}
