/**
 * Filament metering from G-code, pure. Every extruder keeps a "physical" position: the net
 * length of filament pushed into the hot end. Absolute and relative E moves both move it; G92
 * only renames the coordinate, so it leaves it alone. What a print consumed is the highest
 * physical position reached (a high-water mark): a retraction lowers the position and the
 * un-retract raises it back to the mark without counting twice; a purge line or a cancel
 * script's extrusion counts like any other.
 */

export interface ExtruderState {
  /** Logical E coordinate as the firmware sees it (what G92 sets). */
  e: number;
  /** Net filament pushed since tracking started, mm. */
  physical: number;
  /** Highest `physical` reached: the filament consumed, mm. */
  highWater: number;
}

export interface ExtrusionState {
  /** G90/G91 switch E too (Marlin, Prusa); in RepRapFirmware only M82/M83 do. */
  positioningSetsE: boolean;
  /** G90/G91: absolute or relative for all axes. */
  absolutePositioning: boolean;
  /** M82/M83 override for E; null follows G90/G91. */
  absoluteE: boolean | null;
  tool: number;
  extruders: ExtruderState[];
}

export function initialExtrusion(positioningSetsE = true): ExtrusionState {
  return { positioningSetsE, absolutePositioning: true, absoluteE: positioningSetsE ? null : true, tool: 0, extruders: [{ e: 0, physical: 0, highWater: 0 }] };
}

/** Total filament consumed so far per extruder, mm. */
export function consumedMm(s: ExtrusionState): number[] {
  return s.extruders.map((x) => x.highWater);
}

export function totalConsumedMm(s: ExtrusionState): number {
  return s.extruders.reduce((a, x) => a + x.highWater, 0);
}

/** Strips a line number, checksum and comment: `N12 G1 E5 *87 ; prime` → `G1 E5`. */
export function stripLine(line: string): string {
  let s = line;
  const semi = s.indexOf(';');
  if (semi >= 0) s = s.slice(0, semi);
  const star = s.indexOf('*');
  if (star >= 0) s = s.slice(0, star);
  s = s.replace(/\([^)]*\)/g, '').trim();
  if (s[0] === 'N' || s[0] === 'n') s = s.replace(/^[Nn]\d+\s*/, '');
  return s;
}

const WORD = /([A-Za-z])\s*([-+]?(?:\d+\.?\d*|\.\d+))?/g;

/** The command (`G1`, `M83`, `T1`) and its numeric parameters. */
export function parseCommand(line: string): { cmd: string; params: Map<string, number> } | null {
  const s = stripLine(line);
  if (!s) return null;
  const words = [...s.matchAll(WORD)];
  const first = words[0];
  if (!first || first[2] === undefined) return null;
  const letter = first[1]!.toUpperCase();
  const cmd = `${letter}${Number(first[2])}`;
  const params = new Map<string, number>();
  for (const w of words.slice(1)) params.set(w[1]!.toUpperCase(), w[2] === undefined ? NaN : Number(w[2]));
  return { cmd, params };
}

function extruder(s: ExtrusionState, tool: number): ExtruderState {
  while (s.extruders.length <= tool) s.extruders.push({ e: 0, physical: 0, highWater: 0 });
  return s.extruders[tool]!;
}

function isAbsoluteE(s: ExtrusionState): boolean {
  return s.absoluteE ?? s.absolutePositioning;
}

/**
 * Applies one G-code line; returns the new state and the filament newly consumed (mm) by it.
 * The input state is not modified.
 */
export function applyGcode(state: ExtrusionState, line: string): { state: ExtrusionState; consumedMm: number } {
  const c = parseCommand(line);
  if (!c) return { state, consumedMm: 0 };
  const s: ExtrusionState = { ...state, extruders: state.extruders.map((x) => ({ ...x })) };
  const x = extruder(s, s.tool);
  const before = x.highWater;
  const e = c.params.get('E');
  switch (c.cmd) {
    case 'G0':
    case 'G1':
    case 'G2':
    case 'G3':
      if (e !== undefined && Number.isFinite(e)) {
        const delta = isAbsoluteE(s) ? e - x.e : e;
        x.e += delta;
        x.physical += delta;
        if (x.physical > x.highWater) x.highWater = x.physical;
      }
      break;
    case 'G92':
      // G92 with no axis resets every axis, E included (Marlin).
      if (c.params.size === 0) x.e = 0;
      else if (e !== undefined && Number.isFinite(e)) x.e = e;
      break;
    case 'G90':
    case 'G91':
      s.absolutePositioning = c.cmd === 'G90';
      if (s.positioningSetsE) s.absoluteE = null;
      break;
    case 'M82':
      s.absoluteE = true;
      break;
    case 'M83':
      s.absoluteE = false;
      break;
    default:
      if (c.cmd[0] === 'T') s.tool = Number(c.cmd.slice(1));
      else return { state, consumedMm: 0 };
  }
  return { state: s, consumedMm: extruder(s, state.tool).highWater - before };
}

export interface FilamentSpec {
  diameterMm: number;
  densityGPerCm3: number;
}

export const MATERIAL_DENSITY: Readonly<Record<string, number>> = { PLA: 1.24, PETG: 1.27, ABS: 1.04, ASA: 1.07, TPU: 1.21, NYLON: 1.14 };

/** grams = length × π × (d/2)² × density; mm³ → cm³ is /1000. */
export function gramsOf(lengthMm: number, spec: FilamentSpec): number {
  return (lengthMm * Math.PI * (spec.diameterMm / 2) ** 2 * spec.densityGPerCm3) / 1000;
}

const isDigit = (c: number) => c >= 48 && c <= 57;
const isLetter = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
/** What `\s` matches in the characters G-code is written in (latin1). */
const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13) || c === 160;

/** Where the number numberAt read ends. */
let numberEnd = 0;

/** The number WORD reads at `j` (`[-+]?(\d+\.?\d*|\.\d+)`), or undefined when there is none. */
function numberAt(line: string, j: number, end: number): number | undefined {
  let k = j;
  const sign = line.charCodeAt(k);
  if (sign === 43 || sign === 45) k++;
  const digits = k;
  while (k < end && isDigit(line.charCodeAt(k))) k++;
  if (k > digits) {
    if (k < end && line.charCodeAt(k) === 46) for (k++; k < end && isDigit(line.charCodeAt(k)); ) k++;
  } else if (k + 1 < end && line.charCodeAt(k) === 46 && isDigit(line.charCodeAt(k + 1))) {
    for (k += 2; k < end && isDigit(line.charCodeAt(k)); ) k++;
  } else return undefined;
  numberEnd = k;
  return Number(line.slice(j, k));
}

/**
 * applyGcode's arithmetic on `s` itself, reading only the words it needs without a regular
 * expression or a new state per line: for a whole file at once (a quote of a 50 MB file), where
 * those would cost more than reading it. The same result as applyGcode, line for line (tested
 * against it); a line with a parenthesised comment goes through applyGcode itself.
 */
export function applyGcodeInPlace(s: ExtrusionState, line: string): void {
  let end = line.length;
  const semi = line.indexOf(';');
  if (semi >= 0) end = semi;
  const star = line.indexOf('*');
  if (star >= 0 && star < end) end = star;
  const paren = line.indexOf('(');
  if (paren >= 0 && paren < end) {
    const r = applyGcode(s, line).state;
    Object.assign(s, r);
    return;
  }
  let j = 0;
  while (j < end && isSpace(line.charCodeAt(j))) j++;
  // a line number: `N12 `
  if (j + 1 < end && (line.charCodeAt(j) | 0x20) === 110 && isDigit(line.charCodeAt(j + 1))) {
    for (j += 2; j < end && isDigit(line.charCodeAt(j)); ) j++;
    while (j < end && isSpace(line.charCodeAt(j))) j++;
  }
  let letter = 0;
  let num = 0;
  let params = 0;
  let e: number | undefined;
  while (j < end) {
    const c = line.charCodeAt(j);
    if (!isLetter(c)) {
      j++;
      continue;
    }
    let k = j + 1;
    while (k < end && isSpace(line.charCodeAt(k))) k++;
    const v = numberAt(line, k, end);
    if (letter === 0) {
      if (v === undefined) return;
      letter = c & ~0x20;
      num = v;
    } else {
      params++;
      if ((c & ~0x20) === 69) e = v ?? NaN;
    }
    j = v === undefined ? k : numberEnd;
  }
  if (letter === 71 /* G */) {
    if (num === 0 || num === 1 || num === 2 || num === 3) {
      const x = extruder(s, s.tool);
      if (e !== undefined && Number.isFinite(e)) {
        const delta = isAbsoluteE(s) ? e - x.e : e;
        x.e += delta;
        x.physical += delta;
        if (x.physical > x.highWater) x.highWater = x.physical;
      }
    } else if (num === 92) {
      const x = extruder(s, s.tool);
      if (params === 0) x.e = 0;
      else if (e !== undefined && Number.isFinite(e)) x.e = e;
    } else if (num === 90 || num === 91) {
      extruder(s, s.tool);
      s.absolutePositioning = num === 90;
      if (s.positioningSetsE) s.absoluteE = null;
    }
  } else if (letter === 77 /* M */ && (num === 82 || num === 83)) {
    extruder(s, s.tool);
    s.absoluteE = num === 82;
  } else if (letter === 84 /* T */) {
    extruder(s, s.tool);
    s.tool = num;
  }
}
