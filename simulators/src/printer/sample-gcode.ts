/**
 * Realistic G-code for tests, benchmarks and the simulated lab, with every awkward case of
 * filament metering in it: a purge line, retractions, G92 resets at each layer, a section in
 * relative E (M83) and a return to absolute, and an end script that retracts.
 */
export interface SampleOptions {
  layers?: number;
  movesPerLayer?: number;
  /** Heat up with M109/M190 (slow unless the simulator runs fast). */
  heat?: boolean;
}

export function sampleGcode({ layers = 10, movesPerLayer = 40, heat = true }: SampleOptions = {}): string {
  const out: string[] = ['; generated test print', 'M140 S60', 'M104 S210'];
  if (heat) out.push('M190 S60', 'M109 S210');
  out.push('G28 ; home', 'G90', 'M82 ; absolute extrusion', 'G92 E0', 'G1 Z0.3 F3000', 'G1 X60 E9 F1000 ; purge line', 'G1 X100 E12.5', 'G92 E0');
  let e = 0;
  for (let layer = 0; layer < layers; layer++) {
    out.push(`; LAYER ${layer}`, `G1 Z${(0.3 + layer * 0.2).toFixed(2)} F600`);
    const relative = layer % 4 === 2; // every fourth layer in relative E
    if (relative) out.push('M83');
    for (let m = 0; m < movesPerLayer; m++) {
      const step = 0.35 + ((m * 7 + layer * 3) % 10) / 100;
      const x = (20 + ((m * 13) % 160)).toFixed(2);
      const y = (20 + ((m * 29 + layer) % 160)).toFixed(2);
      if (m % 9 === 8) {
        // travel with retraction
        out.push(relative ? 'G1 E-0.8 F2100' : `G1 E${(e - 0.8).toFixed(5)} F2100`, `G0 X${x} Y${y} F9000`, relative ? 'G1 E0.8 F2100' : `G1 E${e.toFixed(5)} F2100`);
        continue;
      }
      if (relative) out.push(`G1 X${x} Y${y} E${step.toFixed(5)} F1800`);
      else out.push(`G1 X${x} Y${y} E${(e += step).toFixed(5)} F1800`);
    }
    if (relative) out.push('M82', `G92 E0`);
    else out.push('G92 E0');
    e = 0;
  }
  out.push('; end', 'G91', 'G1 E-2 F2400 ; retract', 'G1 Z10', 'G90', 'M104 S0', 'M140 S0', 'M84');
  return out.join('\n') + '\n';
}

/** The simulated printer's demo print, on its card as demo.gcode (and in config/ for the gateway). */
export function demoGcode(): string {
  return sampleGcode({ layers: 20, movesPerLayer: 40 });
}
