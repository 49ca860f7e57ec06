/**
 * The simulated printer's physical side: heaters that approach their targets, the axes, and
 * each extruder's motor with the filament it really pushed (the ground truth the driver's
 * metering is compared with). It knows nothing of G-code or of the serial line.
 */

export const AMBIENT = 22;

export interface Heater {
  actual: number;
  target: number;
}

export class Heaters {
  readonly hotend: Heater = { actual: AMBIENT, target: 0 };
  readonly bed: Heater = { actual: AMBIENT, target: 0 };
  private at = performance.now();

  /** Brings the temperatures up to now, at `timeScale` simulated seconds per real second. */
  integrate(timeScale: number): void {
    const now = performance.now();
    const dt = ((now - this.at) / 1000) * timeScale;
    this.at = now;
    for (const h of [this.hotend, this.bed]) {
      // First-order approach to the target (or to ambient when off), time constant 20 s.
      const goal = h.target > 0 ? h.target : AMBIENT;
      h.actual = goal + (h.actual - goal) * Math.exp(-dt / 20);
    }
  }

  off(): void {
    this.hotend.target = this.bed.target = 0;
  }
}

export class Motion {
  /** G91: X, Y and Z (and E, unless M82/M83 says otherwise) move relative. */
  relative = false;
  /** M83 (true) or M82 (false); null follows G90/G91. */
  relativeE: boolean | null = null;
  tool = 0;
  pos = { x: 0, y: 0, z: 0 };
  /** E as the firmware sees it (what G92 sets), per extruder. */
  readonly eLogical: number[] = [0];
  /** Net filament each motor pushed, and the highest it reached: what was really extruded. */
  private readonly motor: number[] = [0];
  readonly highWater: number[] = [0];
  /**
   * The M78 print counter, lifetime, mm: Marlin adds every E move's signed length
   * (`incFilamentUsed(destination.e - current_position.e)`), so a retraction takes off what its
   * un-retraction adds back, and a G92 changes nothing.
   */
  filamentUsedMm = 0;
  /** Simulated seconds of the first and the last extruding move since the last reset. */
  firstExtrudeS: number | null = null;
  lastExtrudeS = 0;
  private feedrateMmPerMin = 1500;

  /** G0–G3 at simulated time `nowS`; returns how long the move takes, in simulated seconds. */
  move(param: (k: string) => number | undefined, nowS: number): number {
    const from = { ...this.pos };
    for (const axis of ['x', 'y', 'z'] as const) {
      const v = param(axis.toUpperCase());
      if (v !== undefined) this.pos[axis] = this.relative ? this.pos[axis] + v : v;
    }
    this.feedrateMmPerMin = param('F') ?? this.feedrateMmPerMin;
    const distance = Math.hypot(this.pos.x - from.x, this.pos.y - from.y, this.pos.z - from.z);
    const e = param('E');
    const relE = this.relativeE ?? this.relative;
    const t = this.tool;
    const delta = e === undefined ? 0 : relE ? e : e - this.eLogical[t]!;
    const seconds = Math.max(distance, Math.abs(delta)) / (this.feedrateMmPerMin / 60);
    if (e === undefined) return seconds;
    this.eLogical[t] = this.eLogical[t]! + delta;
    this.motor[t] = this.motor[t]! + delta;
    this.filamentUsedMm += delta;
    if (delta !== 0) {
      this.lastExtrudeS = nowS;
      this.firstExtrudeS ??= this.lastExtrudeS;
    }
    if (this.motor[t]! > this.highWater[t]!) this.highWater[t] = this.motor[t]!;
    return seconds;
  }

  selectTool(tool: number): void {
    this.tool = tool;
    for (const axis of [this.motor, this.highWater, this.eLogical]) while (axis.length <= tool) axis.push(0);
  }

  /** The board reset: coordinates and modes start afresh; the filament pushed stays pushed. */
  reset(): void {
    this.firstExtrudeS = null;
    this.relative = false;
    this.relativeE = null;
    this.eLogical.fill(0);
  }
}
