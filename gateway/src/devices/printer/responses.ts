/**
 * Parsers for what Marlin-family firmware prints, one small pure function a line kind.
 * Dialect differences (Prusa's one-decimal temperatures with P: and A:, Buddy's missing space
 * before the slash, RepRapFirmware's `rs`) are absorbed here; see dialects.ts for the rest.
 */

export interface Heater {
  actual: number;
  target: number;
}

export interface Temperatures {
  hotend?: Heater;
  bed?: Heater;
  /** Per tool when the firmware reports T0:, T1:… */
  tools: Heater[];
  chamber?: Heater;
  /** Prusa MK3: P: (PINDA probe) and A: (ambient). */
  probe?: number;
  ambient?: number;
}

const TEMP_FIELD = /(?:^|\s)(T\d*|B|C|P|A):\s*(-?\d+(?:\.\d+)?)(?:\s*\/\s*(-?\d+(?:\.\d+)?))?/g;

/** `ok T:210.00 /210.00 B:60.00 /60.00 @:127 B@:0`, an auto-report without `ok`, and the dialect variants. */
export function parseTemperatures(line: string): Temperatures | null {
  const body = line.startsWith('ok') ? line.slice(2) : line;
  if (!/(?:^|\s)T\d*:\s*-?\d/.test(body)) return null;
  const t: Temperatures = { tools: [] };
  for (const m of body.matchAll(TEMP_FIELD)) {
    const [, key, a, b] = m;
    const heater = { actual: Number(a), target: b === undefined ? 0 : Number(b) };
    if (key === 'T') t.hotend = heater;
    else if (key === 'B') t.bed = heater;
    else if (key === 'C') t.chamber = heater;
    else if (key === 'P') t.probe = heater.actual;
    else if (key === 'A') t.ambient = heater.actual;
    else t.tools[Number(key!.slice(1))] = heater;
  }
  if (!t.hotend && t.tools[0]) t.hotend = t.tools[0];
  return t;
}

/** `Resend: 42`, `Resend:42` (Marlin, Prusa) or `rs 42` / `rs N42` (RepRapFirmware): the line wanted next. */
export function parseResend(line: string): number | null {
  const m = /^(?:Resend:\s*|rs\s+N?)(\d+)/.exec(line);
  return m ? Number(m[1]) : null;
}

export function isOk(line: string): boolean {
  return line === 'ok' || line.startsWith('ok ');
}

/** A `start` line: the board has just reset (power, DTR on port open, watchdog). */
export function isStart(line: string): boolean {
  return line === 'start';
}

export type SdStatus = { printing: true; byte: number; total: number } | { printing: false; done: boolean };

/** M27 and its auto-report: `SD printing byte 123/4567`, `Not SD printing`, `Done printing file`. */
export function parseSdStatus(line: string): SdStatus | null {
  const m = /^SD printing byte (\d+)\s*\/\s*(\d+)/.exec(line);
  if (m) return { printing: true, byte: Number(m[1]), total: Number(m[2]) };
  if (line.startsWith('Not SD printing')) return { printing: false, done: false };
  if (line.startsWith('Done printing file')) return { printing: false, done: true };
  return null;
}

/** M114: `X:0.00 Y:0.00 Z:0.00 E:12.34 Count X:…`; only the part before `Count` is the logical position. */
export function parsePosition(line: string): { x: number; y: number; z: number; e: number } | null {
  const head = line.split('Count')[0]!;
  const m = /X:\s*(-?[\d.]+)\s+Y:\s*(-?[\d.]+)\s+Z:\s*(-?[\d.]+)\s+E:\s*(-?[\d.]+)/.exec(head);
  return m ? { x: Number(m[1]), y: Number(m[2]), z: Number(m[3]), e: Number(m[4]) } : null;
}

/**
 * M78, in mm: Marlin's `Stats: Filament used: 12.34m` (metres, a float printed with two
 * decimals), or Prusa-Firmware's `STATS 1234 min 5678 cm.` (whole centimetres).
 */
export function parsePrintCounterFilament(line: string): number | null {
  const m = /Filament used:\s*(-?[\d.]+)\s*m\b/.exec(line);
  if (m) return Math.round(Number(m[1]) * 1000);
  const prusa = /^STATS \d+ min (-?\d+) cm\./.exec(line);
  return prusa ? Number(prusa[1]) * 10 : null;
}

/** `M27 C`: `Current file: ABSOLU~1.GCO absolute-e.gcode` (the long name where the firmware keeps it), or `Current file: (no file)`. */
export function parseCurrentFile(line: string): { dos: string; long: string | null } | 'none' | null {
  const m = /^Current file:\s*(.*?)\s*$/.exec(line);
  if (!m) return null;
  if (m[1] === '(no file)' || m[1] === '') return 'none';
  const space = m[1]!.indexOf(' ');
  return space < 0 ? { dos: m[1]!, long: null } : { dos: m[1]!.slice(0, space), long: m[1]!.slice(space + 1) };
}

/**
 * Prusa-Firmware's `M27` while printing: the file's name on its own line (its long name where it
 * has one, `LONGEST_FILENAME` in its cardreader.cpp), then `SD printing byte a/b`, then the time
 * printed (`h:mm`). Given the line before `SD printing byte`, the name; null when that line is
 * something else the printer says (an `ok`, an echo, a report).
 */
export function parseSdNameLine(lineBefore: string | null): { dos: string; long: null } | null {
  if (!lineBefore || /^(ok\b|echo:|Error:|\/\/|T:|X:|SD printing|Not SD printing|Done printing|Stats|STATS|busy:)/.test(lineBefore)) return null;
  return { dos: lineBefore.trim(), long: null };
}

/** The card went away mid-print (pulled, released with M22, or failing): `echo:SD card released`, `echo:SD init fail`. */
export function parseCardLost(line: string): string | null {
  const m = /^(?:echo:\s*)?(SD card released|SD init fail|Card error.*)$/.exec(line);
  return m ? m[1]! : null;
}

export interface FirmwareInfo {
  name: string;
  fields: Record<string, string>;
  capabilities: Record<string, boolean>;
}

/** M115: `FIRMWARE_NAME:Marlin 2.1.2 (…) SOURCE_CODE_URL:… EXTRUDER_COUNT:1 …` then `Cap:NAME:0|1` lines. */
export function parseFirmwareLine(line: string): Pick<FirmwareInfo, 'name' | 'fields'> | null {
  if (!line.startsWith('FIRMWARE_NAME:')) return null;
  const fields: Record<string, string> = {};
  const keys = [...line.matchAll(/([A-Z_]{3,}):/g)];
  keys.forEach((k, i) => {
    const end = i + 1 < keys.length ? keys[i + 1]!.index : line.length;
    fields[k[1]!] = line.slice(k.index + k[0].length, end).trim();
  });
  return { name: fields.FIRMWARE_NAME ?? '', fields };
}

export function parseCapability(line: string): [string, boolean] | null {
  const m = /^Cap:([A-Z0-9_]+):([01])/.exec(line);
  return m ? [m[1]!, m[2] === '1'] : null;
}

export type FaultKind = 'thermal-runaway' | 'heating-failed' | 'maxtemp' | 'mintemp' | 'halted' | 'error';

/** Fatal firmware messages; after them the printer needs M999 or a reset. */
export function parseFault(line: string): { kind: FaultKind; text: string } | null {
  if (!/^(?:Error:|!!)/.test(line)) return null;
  const text = line.replace(/^(?:Error:|!!)\s*/, '');
  if (/thermal runaway/i.test(text)) return { kind: 'thermal-runaway', text };
  if (/heating failed/i.test(text)) return { kind: 'heating-failed', text };
  if (/maxtemp/i.test(text)) return { kind: 'maxtemp', text };
  if (/mintemp/i.test(text)) return { kind: 'mintemp', text };
  if (/halted|kill\(\) called/i.test(text)) return { kind: 'halted', text };
  return null;
}

/** Non-fatal line errors that precede a resend request. */
export function isLineError(line: string): boolean {
  return /^Error:\s*(?:checksum mismatch|Line Number is not Last Line Number\+1|No Line Number with checksum|No Checksum with line number|Format error)/i.test(line);
}
