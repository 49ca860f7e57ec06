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
