import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyGcode, gramsOf, initialExtrusion, stripLine, totalConsumedMm, type ExtrusionState } from '../gateway/src/devices/printer/filament.js';
import { consumedAtByte, profileOf } from '../gateway/src/devices/printer/file-meter.js';
import { afterExtruderReading, combinedMaterial, interruptedJobs, jobCheckpoint, jobFilamentByExtruderMm, jobMaterial, newJob, sdGapBytes, withSdReport } from '../gateway/src/devices/printer/job.js';
import {
  isLineError,
  parseCardLost,
  parseCurrentFile,
  isOk,
  parseCapability,
  parseFault,
  parseFirmwareLine,
  parsePosition,
  parsePrintCounterFilament,
  parseResend,
  parseSdNameLine,
  parseSdStatus,
  parseTemperatures,
} from '../gateway/src/devices/printer/responses.js';

const run = (lines: string[], s: ExtrusionState = initialExtrusion()) => lines.reduce((st, l) => applyGcode(st, l).state, s);

describe('SD prints: the file, the counter and what the printer says', () => {
  it('reads the current file, a lost card, and both print counters', () => {
    expect(parseCurrentFile('Current file: ABSOLU~1.GCO absolute-e.gcode')).toEqual({ dos: 'ABSOLU~1.GCO', long: 'absolute-e.gcode' });
    expect(parseCurrentFile('Current file: CUBE.GCO')).toEqual({ dos: 'CUBE.GCO', long: null });
    expect(parseCurrentFile('Current file: (no file)')).toBe('none');
    expect(parseCurrentFile('SD printing byte 1/2')).toBeNull();
    // Prusa-Firmware's M27: the name on the line before the byte count
    expect(parseSdNameLine('absolute-e.gcode')).toEqual({ dos: 'absolute-e.gcode', long: null });
    expect(parseSdNameLine('ABSOLU~1.GCO')).toEqual({ dos: 'ABSOLU~1.GCO', long: null });
    for (const other of ['ok', 'echo:busy: processing', 'T:210.0 /210.0 B:60.0 /60.0', 'Not SD printing', '', null]) expect(parseSdNameLine(other)).toBeNull();
    expect(parseCardLost('echo:SD card released')).toBe('SD card released');
    expect(parseCardLost('echo:SD init fail')).toBe('SD init fail');
    expect(parseCardLost('echo:SD card ok')).toBeNull();
  });

  it('meters a file up to the byte read: whole lines only, the file total at its end', () => {
    const text = 'G92 E0\nG1 X1 E5\nG1 E3 ; retract\nG1 E9\n';
    const p = profileOf('t.gcode', text, true);
    expect(p.bytes).toBe(text.length);
    expect(consumedAtByte(p, 0)).toEqual([]);
    expect(consumedAtByte(p, 7)).toEqual([0]); // "G92 E0\n" read
    expect(consumedAtByte(p, 8)).toEqual([0]); // part of the next line: not yet
    expect(consumedAtByte(p, 17)).toEqual([5]);
    expect(consumedAtByte(p, text.length)).toEqual([9]);
  });

  it('a print cut short: what the lines read since the last report could add is the uncertainty', () => {
    const text = Array.from({ length: 100 }, (_, i) => `G1 X${i} E${i + 1}`).join('\n') + '\n';
    const job = newJob({ id: 'j', mode: 'sd', file: 't.gcode', lines: [], startedAt: new Date(0), startedMono: 0 }, true);
    const s = job.sd!;
    s.profile = profileOf('t.gcode', text, true);
    withSdReport(s, 100, text.length, 1000);
    withSdReport(s, 200, text.length, 2000);
    s.gapBytes = sdGapBytes(s, 2500); // 100 bytes a report, 0.1 byte/ms for 500 ms
    expect(s.gapBytes).toBe(150);
    const { mm, material } = jobMaterial(job, POLICY);
    expect(mm).toEqual([consumedAtByte(s.profile, 200)[0]]);
    expect(material.source).toBe('file');
    expect(material.uncertaintyMm).toBeCloseTo(consumedAtByte(s.profile, 350)[0]! - consumedAtByte(s.profile, 200)[0]!, 6);
  });

  it("a session's material: the least exact source decides, uncertainties add, flags are kept", () => {
    expect(combinedMaterial([])).toBeNull();
    const file = { source: 'file', uncertaintyMm: 0, flagged: null } as const;
    const counter = { source: 'printer-counter', uncertaintyMm: 30, flagged: null } as const;
    expect(combinedMaterial([file, counter])).toEqual(counter);
    expect(combinedMaterial([file, { source: 'position-estimate', uncertaintyMm: null, flagged: 'why' }, counter])).toEqual({ source: 'position-estimate', uncertaintyMm: null, flagged: 'why' });
  });
});

describe('printer transcripts', () => {
  it('Marlin 2.x temperature report, polled and auto-reported', () => {
    expect(parseTemperatures('ok T:210.00 /210.00 B:60.00 /60.00 @:127 B@:0')).toEqual({
      hotend: { actual: 210, target: 210 },
      bed: { actual: 60, target: 60 },
      tools: [],
    });
    expect(parseTemperatures(' T:23.44 /0.00 B:22.97 /0.00 @:0 B@:0')).toMatchObject({ hotend: { actual: 23.44, target: 0 }, bed: { actual: 22.97, target: 0 } });
  });

  it('Marlin with two extruders and a chamber', () => {
    const t = parseTemperatures('ok T:200.12 /200.00 B:55.10 /55.00 C:30.00 /0.00 T0:200.12 /200.00 T1:150.40 /0.00 @:90 B@:12 @0:90 @1:0')!;
    expect(t.tools).toEqual([{ actual: 200.12, target: 200 }, { actual: 150.4, target: 0 }]);
    expect(t.chamber).toEqual({ actual: 30, target: 0 });
    expect(t.hotend).toEqual({ actual: 200.12, target: 200 });
  });

  it('Prusa MK3: one decimal, P: probe and A: ambient', () => {
    expect(parseTemperatures('ok T:215.0 /215.0 B:60.1 /60.0 T0:215.0 /215.0 @:72 B@:45 P:35.8 A:31.2')).toEqual({
      hotend: { actual: 215, target: 215 },
      bed: { actual: 60.1, target: 60 },
      tools: [{ actual: 215, target: 215 }],
      probe: 35.8,
      ambient: 31.2,
    });
  });

  it('Prusa Buddy: no space before the slash', () => {
    expect(parseTemperatures('T:210.00/210.00 B:60.00/60.00 X:0.00/0.00 A:30.00/0.00 @:80 B@:40 C@:0.00 HBR@:255')).toMatchObject({
      hotend: { actual: 210, target: 210 },
      bed: { actual: 60, target: 60 },
    });
  });

  it('does not take other lines for temperatures', () => {
    for (const l of ['ok', 'echo:busy: processing', 'X:0.00 Y:0.00 Z:0.00 E:12.34 Count X:0 Y:0 Z:0', 'FIRMWARE_NAME:Marlin', 'start']) {
      expect(parseTemperatures(l)).toBeNull();
    }
  });

  it('resend requests of every dialect', () => {
    expect(parseResend('Resend: 42')).toBe(42);
    expect(parseResend('Resend:42')).toBe(42);
    expect(parseResend('rs 42')).toBe(42);
    expect(parseResend('rs N42')).toBe(42);
    expect(parseResend('ok')).toBeNull();
    expect(isLineError('Error:checksum mismatch, Last Line: 41')).toBe(true);
    expect(isLineError('Error:Line Number is not Last Line Number+1, Last Line: 41')).toBe(true);
    expect(isLineError('Error:Thermal Runaway, system stopped! Heater_ID: 0')).toBe(false);
  });

  it('ok, SD progress, position and print counter', () => {
    expect(isOk('ok')).toBe(true);
    expect(isOk('ok T:20.0 /0.0')).toBe(true);
    expect(isOk('okay')).toBe(false);
    expect(parseSdStatus('SD printing byte 123/4567')).toEqual({ printing: true, byte: 123, total: 4567 });
    expect(parseSdStatus('Not SD printing')).toEqual({ printing: false, done: false });
    expect(parseSdStatus('Done printing file')).toEqual({ printing: false, done: true });
    expect(parsePosition('X:10.00 Y:20.50 Z:0.30 E:152.81 Count X:800 Y:1640 Z:120')).toEqual({ x: 10, y: 20.5, z: 0.3, e: 152.81 });
    expect(parsePrintCounterFilament('Stats: Filament used: 12.3m')).toBe(12300);
    expect(parsePrintCounterFilament('Stats: Filament used: 12.34m')).toBe(12340);
    expect(parsePrintCounterFilament('STATS 1234 min 5678 cm.')).toBe(56780);
  });

  it('M115 firmware line and capabilities', () => {
    const fw = parseFirmwareLine(
      'FIRMWARE_NAME:Marlin 2.1.2.1 (Feb  4 2024 12:00:00) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin PROTOCOL_VERSION:1.0 MACHINE_TYPE:Ender-3 V2 EXTRUDER_COUNT:1 UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff',
    )!;
    expect(fw.name).toBe('Marlin 2.1.2.1 (Feb  4 2024 12:00:00)');
    expect(fw.fields).toMatchObject({ MACHINE_TYPE: 'Ender-3 V2', EXTRUDER_COUNT: '1', PROTOCOL_VERSION: '1.0' });
    expect(parseFirmwareLine('FIRMWARE_NAME:Prusa-Firmware 3.13.3 based on Marlin FIRMWARE_URL:https://github.com/prusa3d/Prusa-Firmware PROTOCOL_VERSION:1.0 MACHINE_TYPE:Prusa i3 MK3S EXTRUDER_COUNT:1 UUID:00000000-0000-0000-0000-000000000000')!.fields.MACHINE_TYPE).toBe('Prusa i3 MK3S');
    expect(parseCapability('Cap:AUTOREPORT_TEMP:1')).toEqual(['AUTOREPORT_TEMP', true]);
    expect(parseCapability('Cap:EMERGENCY_PARSER:0')).toEqual(['EMERGENCY_PARSER', false]);
  });

  it('fatal errors keep the firmware\'s words', () => {
    expect(parseFault('Error:Thermal Runaway, system stopped! Heater_ID: 0')).toEqual({ kind: 'thermal-runaway', text: 'Thermal Runaway, system stopped! Heater_ID: 0' });
    expect(parseFault('Error:Heating failed, system stopped! Heater_ID: bed')!.kind).toBe('heating-failed');
    expect(parseFault('Error:MAXTEMP triggered, system stopped! Heater_ID: 0')!.kind).toBe('maxtemp');
    expect(parseFault('Error: MINTEMP triggered, system stopped! Heater_ID: 0')!.kind).toBe('mintemp');
    expect(parseFault('Error:Printer halted. kill() called!')!.kind).toBe('halted');
    expect(parseFault('Error:checksum mismatch, Last Line: 41')).toBeNull();
  });
});

describe('filament metering from G-code', () => {
  it('strips line numbers, checksums and comments', () => {
    expect(stripLine('N12 G1 X5 E1.5*87 ; prime')).toBe('G1 X5 E1.5');
    expect(stripLine('; only a comment')).toBe('');
  });

  it('counts a purge line, retractions once, and survives G92 resets', () => {
    const s = run([
      'M82', 'G92 E0',
      'G1 X60 E9 F1000 ; purge line', 'G1 X100 E12.5',
      'G92 E0', 'G1 E-0.8 F2100 ; retract', 'G1 X20 Y20', 'G1 E0 ; unretract', 'G1 X30 E1.2',
      'G92 E0', 'G1 E-0.8', 'G1 E0', 'G1 X40 E2.0',
    ]);
    expect(totalConsumedMm(s)).toBeCloseTo(12.5 + 1.2 + 2.0, 9);
  });

  it('follows M83 relative sections and G91', () => {
    const s = run(['M83', 'G1 E5', 'G1 E-1', 'G1 E1', 'G1 E2', 'M82', 'G92 E100', 'G1 E103', 'G91', 'G1 E1', 'G90', 'G1 E104']);
    expect(totalConsumedMm(s)).toBeCloseTo(5 + 2 + 3 + 1, 9);
  });

  it('G90 brings E back to absolute after M83, as Marlin does', () => {
    const s = run(['M83', 'G1 E5', 'G90', 'G1 E7']);
    expect(totalConsumedMm(s)).toBeCloseTo(7, 9);
  });

  it('meters each extruder on its own', () => {
    const s = run(['T0', 'G1 E10', 'T1', 'G92 E0', 'G1 E4', 'T0', 'G1 E11']);
    expect(s.extruders.map((x) => x.highWater)).toEqual([11, 4]);
  });

  it('ignores lines without extrusion and non-moves with E words', () => {
    expect(totalConsumedMm(run(['G28', 'M104 S210', 'M109 S210', 'G1 X10 Y10 F3000', 'M221 S95', 'M900 K0.05']))).toBe(0);
  });

  it('is the same in absolute and relative E for any moves (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -5, max: 20, noNaN: true }), { maxLength: 60 }), (deltas) => {
        let abs = 0;
        const absolute = ['M82', 'G92 E0', ...deltas.map((d) => `G1 E${(abs += d).toFixed(5)}`)];
        const relative = ['M83', ...deltas.map((d) => `G1 E${d.toFixed(5)}`)];
        let physical = 0;
        let high = 0;
        for (const d of deltas) high = Math.max(high, (physical += Number(d.toFixed(5))));
        expect(totalConsumedMm(run(absolute))).toBeCloseTo(high, 3);
        expect(totalConsumedMm(run(relative))).toBeCloseTo(high, 3);
      }),
    );
  });

  it('a G92 anywhere never changes what was consumed (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -3, max: 10, noNaN: true }), { minLength: 1, maxLength: 40 }), fc.nat(39), fc.double({ min: -100, max: 100, noNaN: true }), (deltas, at, to) => {
        const lines = ['M83', ...deltas.map((d) => `G1 E${d.toFixed(4)}`)];
        const withReset = [...lines.slice(0, 1 + (at % deltas.length)), `G92 E${to.toFixed(3)}`, ...lines.slice(1 + (at % deltas.length))];
        expect(totalConsumedMm(run(withReset))).toBeCloseTo(totalConsumedMm(run(lines)), 6);
      }),
    );
  });

  it('converts length to grams: 1 m of 1.75 mm PLA is about 2.98 g', () => {
    expect(gramsOf(1000, { diameterMm: 1.75, densityGPerCm3: 1.24 })).toBeCloseTo(2.98, 2);
  });
});

describe('RepRapFirmware E modes', () => {
  it('G90/G91 leave E alone; only M82/M83 switch it', () => {
    const s = ['M83', 'G1 E5', 'G90', 'G1 E2', 'G91', 'M82', 'G1 E10'].reduce((st, l) => applyGcode(st, l).state, initialExtrusion(false));
    expect(totalConsumedMm(s)).toBeCloseTo(10, 9);
  });
});

const POLICY = { counterStepMm: 10, maxRetractionMm: 5, crossCheckMarginMm: 20 };

describe('SD mode: filament from extruder positions (M114)', () => {
  /** The filament an SD job has used after these E readings, with a 5 mm retraction limit. */
  const used = (readings: number[]) => {
    const job = newJob({ id: 'j', mode: 'sd', file: 'SD card', lines: [], startedAt: new Date(0), startedMono: 0 }, true);
    for (const e of readings) job.sd!.readings = afterExtruderReading(job.sd!.readings, e, 5);
    return jobFilamentByExtruderMm(job, POLICY)[0]!;
  };

  it('counts what came before the first reading (a purge), retractions once, and a large drop as a G92 reset', () => {
    expect(used([])).toBe(0);
    expect(used([4])).toBe(4);
    expect(used([4, 10, 8.5, 10, 15])).toBe(15);
    expect(used([4, 15, 0.5, 3])).toBe(15 + 3);
  });

  it('within one segment, what was used is the highest reading, however it moved back and forth (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { maxLength: 60 }), (deltas) => {
        // Never more than 4.9 mm below the highest reading: every drop is a retraction.
        let e = 0;
        let high = 0;
        const readings = deltas.map((d) => {
          e = Math.max(high - 4.9, e + d);
          high = Math.max(high, e);
          return e;
        });
        expect(used(readings)).toBeCloseTo(high, 9);
      }),
    );
  });
});

describe('print jobs cut short by a crash', () => {
  it('checkpoint what a job used so far, and end it interrupted with the last checkpoint, or nothing used without one', () => {
    const job = newJob({ id: 'j2', mode: 'host', file: 'cube.gcode', lines: ['G92 E0', 'G1 X5 E10', 'G1 X9 E25', 'M84'], startedAt: new Date(0), startedMono: 1000 }, true);
    for (const line of job.lines.slice(0, 3)) job.extrusion = applyGcode(job.extrusion, line).state;
    job.acked = 3;
    const cp = jobCheckpoint(job, { diameterMm: 1.75, densityGPerCm3: 1.24 }, POLICY, 13_500);
    const material = { source: 'file', uncertaintyMm: 0, flagged: null };
    expect(cp).toEqual({ filamentMm: 25, filamentG: Math.round(gramsOf(25, { diameterMm: 1.75, densityGPerCm3: 1.24 }) * 1000) / 1000, material, progress: 0.75, durationS: 12.5 });

    const ended = interruptedJobs([
      { started: { jobId: 'j1', mode: 'sd', file: 'SD card' }, checkpoint: null },
      { started: { jobId: 'j2', mode: 'host', file: 'cube.gcode', lines: 4 }, checkpoint: { at: '2026-01-05T10:01:30.000Z', data: cp } },
    ]);
    expect(ended).toEqual([
      { jobId: 'j1', mode: 'sd', file: 'SD card', outcome: 'interrupted', reason: expect.stringMatching(/crash/), filamentMm: 0, filamentG: 0, durationS: 0, lastCheckpointAt: null },
      { jobId: 'j2', mode: 'host', file: 'cube.gcode', outcome: 'interrupted', reason: expect.stringMatching(/crash/), filamentMm: 25, filamentG: cp.filamentG, durationS: 12.5, material, lastCheckpointAt: '2026-01-05T10:01:30.000Z' },
    ]);
  });
});
