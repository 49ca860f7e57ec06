/**
 * The GPIO tool switch: chip resolution against fake sysfs trees (old and new kernels, Pi 4
 * and Pi 5 layouts), the switch on simulated pins with a feedback contact that follows the
 * relay (or sticks), LED and buzzer patterns, and the refusal to start without GPIO.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { checkLines, globalNumber, listChips, pickChip, resolveChip, type GpioChip } from '../gateway/src/devices/gpio/chip.js';
import { gpioSwitchSchema, type PinRole } from '../gateway/src/devices/gpio/config.js';
import type { SimulatedBoard } from '../gateway/src/devices/gpio/pins.js';
import { GpioSwitch, LONG_BEEP_MS, SHORT_BEEP_MS } from '../gateway/src/devices/gpio/switch.js';
import type { RelayState } from '../gateway/src/devices/tool-io.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { tempDir } from './helpers.js';

/** A /sys/class/gpio look-alike: one directory per chip, plus the files and exported lines that are not chips. */
function fakeSysfs(chips: GpioChip[]): string {
  const root = tempDir('sysfs-gpio');
  for (const c of chips) {
    const dir = join(root, `gpiochip${c.base}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'base'), `${c.base}\n`);
    writeFileSync(join(dir, 'label'), `${c.label}\n`);
    writeFileSync(join(dir, 'ngpio'), `${c.ngpio}\n`);
  }
  writeFileSync(join(root, 'export'), '');
  writeFileSync(join(root, 'unexport'), '');
  if (chips[0]) mkdirSync(join(root, `gpio${chips[0].base + 4}`)); // a line someone exported
  return root;
}

const OLD_PI4: GpioChip[] = [
  { label: 'pinctrl-bcm2711', base: 0, ngpio: 58 },
  { label: 'raspberrypi-exp-gpio', base: 504, ngpio: 8 },
];
const NEW_PI4: GpioChip[] = [
  { label: 'pinctrl-bcm2711', base: 512, ngpio: 58 },
  { label: 'raspberrypi-exp-gpio', base: 570, ngpio: 8 },
];
// Bookworm on a Pi 5: the SoC's own chips come first; the header is on the RP1 chip.
const PI5: GpioChip[] = [
  { label: 'gpio-brcmstb@107d508500', base: 512, ngpio: 32 },
  { label: 'gpio-brcmstb@107d508520', base: 544, ngpio: 4 },
  { label: 'gpio-brcmstb@107d517c00', base: 548, ngpio: 17 },
  { label: 'gpio-brcmstb@107d517c20', base: 565, ngpio: 6 },
  { label: 'pinctrl-rp1', base: 571, ngpio: 54 },
];

describe('GPIO chip resolution', () => {
  it('finds the header chip at base 0 on a kernel before 6.6', () => {
    const chip = resolveChip(fakeSysfs(OLD_PI4));
    expect(chip).toEqual({ label: 'pinctrl-bcm2711', base: 0, ngpio: 58 });
    expect(globalNumber(chip, 17)).toBe(17);
  });

  it('finds the header chip at base 512 on a newer kernel, so BCM 17 is global 529', () => {
    const chip = resolveChip(fakeSysfs(NEW_PI4));
    expect(chip).toEqual({ label: 'pinctrl-bcm2711', base: 512, ngpio: 58 });
    expect(globalNumber(chip, 17)).toBe(529);
  });

  it('on a Pi 5 picks the RP1 chip, not the lowest base', () => {
    const root = fakeSysfs(PI5);
    expect(listChips(root).map((c) => c.base)).toEqual([512, 544, 548, 565, 571]);
    const chip = resolveChip(root);
    expect(chip.label).toBe('pinctrl-rp1');
    expect(globalNumber(chip, 17)).toBe(588);
  });

  it('without a known Pi chip takes the lowest base', () => {
    const chip = resolveChip(fakeSysfs([{ label: 'gpio-other', base: 600, ngpio: 16 }, { label: 'gpio-main', base: 400, ngpio: 32 }]));
    expect(chip.label).toBe('gpio-main');
  });

  it('takes the chip labelled in the config, and names what it found when there is none', () => {
    const root = fakeSysfs(NEW_PI4);
    expect(resolveChip(root, 'raspberrypi-exp-gpio')).toEqual({ label: 'raspberrypi-exp-gpio', base: 570, ngpio: 8 });
    expect(() => resolveChip(root, 'pinctrl-rp1')).toThrow('no chip labelled pinctrl-rp1; found: pinctrl-bcm2711 (base 512), raspberrypi-exp-gpio (base 570)');
  });

  it('says so when there are no chips', () => {
    const root = fakeSysfs([]);
    expect(() => resolveChip(root)).toThrow(`no GPIO chips under ${root}: `);
    expect(() => pickChip([])).toThrow('no GPIO chips under /sys/class/gpio: ');
  });

  it('refuses line offsets the chip does not have', () => {
    const chip = { label: 'raspberrypi-exp-gpio', base: 570, ngpio: 8 };
    expect(() => checkLines(chip, [{ role: 'relay', line: 7 }])).not.toThrow();
    expect(() => checkLines(chip, [{ role: 'relay', line: 7 }, { role: 'buzzer', line: 8 }, { role: 'ledRed', line: 27 }])).toThrow(
      'pins.buzzer (line 8), pins.ledRed (line 27): chip raspberrypi-exp-gpio has only 8 lines (0 to 7)',
    );
  });
});

describe('gpio config', () => {
  const base = { id: 'laser', kind: 'gpio' };

  it('takes a bare number as a line, with defaults', () => {
    const cfg = gpioSwitchSchema.parse({ ...base, pins: { relay: 17, feedback: { line: 27, activeLow: true } } });
    expect(cfg).toEqual({ id: 'laser', kind: 'gpio', simulated: false, pins: { relay: { line: 17, activeLow: false }, feedback: { line: 27, activeLow: true } } });
  });

  it('rejects the same line used twice, naming both pins', () => {
    const r = gpioSwitchSchema.safeParse({ ...base, pins: { relay: 17, ledGreen: 22, ledRed: { line: 17 } } });
    expect(r.success).toBe(false);
    expect(r.error!.issues).toEqual([expect.objectContaining({ path: ['pins', 'ledRed'], message: 'line 17 is already used by pins.relay; each pin needs its own line' })]);
  });

  it('rejects lines beyond BCM numbering, unknown keys and a missing relay', () => {
    expect(gpioSwitchSchema.safeParse({ ...base, pins: { relay: 64 } }).success).toBe(false);
    expect(gpioSwitchSchema.safeParse({ ...base, pins: { relay: 17, fan: 5 } }).success).toBe(false);
    expect(gpioSwitchSchema.safeParse({ ...base, pins: { relay: { line: 17, inverted: true } } }).success).toBe(false);
    expect(gpioSwitchSchema.safeParse({ ...base, pins: { feedback: 27 } }).success).toBe(false);
  });
});

interface Rig {
  sw: GpioSwitch;
  board: SimulatedBoard;
  journal: Journal;
  logs: Record<string, unknown>[];
  events: RelayState[];
}

function rig(pins: Record<string, unknown> = { relay: 17, feedback: 27, ledGreen: 22, ledRed: 23, buzzer: 24 }, extra: Record<string, unknown> = {}): Rig {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const journal = Journal.open(tempDir('gpio-journal'));
  const cfg = gpioSwitchSchema.parse({ id: 'laser', kind: 'gpio', simulated: true, pins, ...extra });
  const sw = new GpioSwitch(cfg, journal, createLogger({ level: 'debug', format: 'json' }, sink));
  const events: RelayState[] = [];
  sw.on('relay', (r) => events.push(r));
  return { sw, board: sw.simulation!, journal, logs, events };
}

const messages = (r: Rig) => r.logs.map((l) => l.msg);

describe('GPIO switch on simulated pins', () => {
  let r: Rig;

  beforeEach(() => {
    vi.useFakeTimers();
  });

  afterEach(async () => {
    await r?.sw.stop();
    r?.journal.close();
    vi.useRealTimers();
  });

  /** Runs a command while fake time passes. */
  async function command(p: Promise<unknown>, ms = 300): Promise<void> {
    await vi.advanceTimersByTimeAsync(ms);
    await p;
  }

  it('switches the relay and reports the contact once it has followed', async () => {
    r = rig();
    r.sw.start();
    expect(r.sw.relayState).toEqual({ requested: false, sensed: false });
    let done = false;
    const on = r.sw.setRelay(true, 'session-start').then(() => (done = true));
    await vi.advanceTimersByTimeAsync(1);
    expect(r.board.pin('relay')!.read()).toBe(true);
    expect(done).toBe(false);
    // The contact moves after 5 ms and is stable 20 ms later: the command ends well before the 250 ms limit.
    await vi.advanceTimersByTimeAsync(29);
    expect(done).toBe(true);
    await on;
    expect(r.events).toEqual([{ requested: true, sensed: true }]);
    await command(r.sw.setRelay(false, 'session-end'));
    expect(r.events).toEqual([
      { requested: true, sensed: true },
      { requested: false, sensed: false },
    ]);
    expect(r.sw.relayState).toEqual({ requested: false, sensed: false });
  });

  it('without a feedback contact reports sensed: null and drives the electrical level through activeLow', async () => {
    r = rig({ relay: { line: 17, activeLow: true } });
    r.sw.start();
    const relay = r.board.pin('relay')!;
    expect(relay.level).toBe(1); // inactive
    await command(r.sw.setRelay(true, 'session-start'), 0);
    expect(relay.level).toBe(0);
    expect(r.events).toEqual([{ requested: true, sensed: null }]);
  });

  it('reports a contact that does not follow (welded or broken)', async () => {
    r = rig();
    r.sw.start();
    r.board.pin('feedback')!.stick(false);
    await command(r.sw.setRelay(true, 'session-start'));
    expect(r.events).toEqual([{ requested: true, sensed: false }]);
    expect(messages(r)).toContain('relay contact does not follow the command');

    r.board.pin('feedback')!.stick(true);
    await vi.advanceTimersByTimeAsync(30);
    r.events.length = 0;
    await command(r.sw.setRelay(false, 'session-end'));
    expect(r.events).toEqual([{ requested: false, sensed: true }]);
  });

  it('emits an event when the contact opens by itself, once however much it bounces', async () => {
    r = rig();
    r.sw.start();
    await command(r.sw.setRelay(true, 'session-start'));
    r.events.length = 0;
    const contact = r.board.pin('feedback')!;
    contact.set(false);
    await vi.advanceTimersByTimeAsync(5);
    contact.set(true);
    await vi.advanceTimersByTimeAsync(5);
    contact.set(false);
    await vi.advanceTimersByTimeAsync(15);
    expect(r.events).toEqual([]); // still bouncing
    await vi.advanceTimersByTimeAsync(10);
    expect(r.events).toEqual([{ requested: true, sensed: false }]);
    expect(messages(r)).toContain('relay contact opened by itself');
    contact.set(true);
    await vi.advanceTimersByTimeAsync(30);
    expect(r.events).toEqual([
      { requested: true, sensed: false },
      { requested: true, sensed: true },
    ]);
  });

  it('runs commands one after the other, each with its own report', async () => {
    r = rig();
    r.sw.start();
    const all = Promise.all([r.sw.setRelay(true, 'session-start'), r.sw.setRelay(false, 'session-end'), r.sw.setRelay(true, 'session-start')]);
    await command(all, 1000);
    expect(r.events).toEqual([
      { requested: true, sensed: true },
      { requested: false, sensed: false },
      { requested: true, sensed: true },
    ]);
  });

  describe('indications', () => {
    const INDICATORS: PinRole[] = ['ledGreen', 'ledRed', 'buzzer'];
    let edges: { role: PinRole; on: boolean; at: number }[];
    let t0: number;

    /** Records every change of the indicator lines, in ms since the indication began. */
    function record(): void {
      edges = [];
      t0 = Date.now();
      for (const role of INDICATORS) {
        const pin = r.board.pin(role)!;
        const write = pin.write.bind(pin);
        pin.write = (on: boolean) => {
          if (pin.read() !== on) edges.push({ role, on, at: Date.now() - t0 });
          write(on);
        };
      }
    }

    const before = (ms: number) => edges.filter((e) => e.at < ms).map((e) => `${e.role} ${e.on ? 'on' : 'off'} @${e.at}`);
    const lit = () => INDICATORS.filter((role) => r.board.pin(role)!.read());

    beforeEach(() => {
      r = rig();
      r.sw.start();
      record();
    });

    it('granted: green for the duration and one short beep', async () => {
      await r.sw.indicate('granted', 1500, 'ada');
      expect(lit()).toEqual(['ledGreen', 'buzzer']);
      await vi.advanceTimersByTimeAsync(2000);
      expect(before(Infinity)).toEqual(['ledGreen on @0', 'buzzer on @0', `buzzer off @${SHORT_BEEP_MS}`, 'ledGreen off @1500']);
      expect(lit()).toEqual([]);
    });

    it('denied: red and two short beeps', async () => {
      await r.sw.indicate('denied', 1500, 'not-qualified');
      await vi.advanceTimersByTimeAsync(2000);
      expect(before(Infinity)).toEqual(['ledRed on @0', 'buzzer on @0', 'buzzer off @100', 'buzzer on @200', 'buzzer off @300', 'ledRed off @1500']);
    });

    it('warning: red blinking at 2 Hz with a beep each second', async () => {
      await r.sw.indicate('warning', 3000, 'idle');
      await vi.advanceTimersByTimeAsync(3000);
      const seen = before(3000);
      expect(seen.filter((e) => e.startsWith('ledRed on'))).toEqual(['@0', '@500', '@1000', '@1500', '@2000', '@2500'].map((t) => `ledRed on ${t}`));
      expect(seen.filter((e) => e.startsWith('ledRed off'))).toEqual(['@250', '@750', '@1250', '@1750', '@2250', '@2750'].map((t) => `ledRed off ${t}`));
      expect(seen.filter((e) => e.startsWith('buzzer'))).toEqual(['buzzer on @0', 'buzzer off @100', 'buzzer on @1000', 'buzzer off @1100', 'buzzer on @2000', 'buzzer off @2100']);
      expect(seen.some((e) => e.startsWith('ledGreen'))).toBe(false);
      expect(lit()).toEqual([]);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('error: red and one long beep', async () => {
      await r.sw.indicate('error', 2000, 'relay-failed');
      await vi.advanceTimersByTimeAsync(2500);
      expect(before(Infinity)).toEqual(['ledRed on @0', 'buzzer on @0', `buzzer off @${LONG_BEEP_MS}`, 'ledRed off @2000']);
    });

    it('info: green blinking, silent', async () => {
      await r.sw.indicate('info', 2000, '');
      await vi.advanceTimersByTimeAsync(1999);
      expect(before(Infinity)).toEqual(['ledGreen on @0', 'ledGreen off @500', 'ledGreen on @1000', 'ledGreen off @1500']);
    });

    it('a new indication replaces the running one; off ends it', async () => {
      await r.sw.indicate('warning', 5000, 'idle');
      await vi.advanceTimersByTimeAsync(600);
      await r.sw.indicate('granted', 1000, 'bo');
      expect(lit()).toEqual(['ledGreen', 'buzzer']);
      await vi.advanceTimersByTimeAsync(5000);
      expect(edges.filter((e) => e.at > 600).map((e) => `${e.role} ${e.on ? 'on' : 'off'} @${e.at}`)).toEqual(['buzzer off @700', 'ledGreen off @1600']);

      await r.sw.indicate('info', 5000, '');
      expect(lit()).toEqual(['ledGreen']);
      await r.sw.indicate('off', 0, '');
      expect(lit()).toEqual([]);
      expect(vi.getTimerCount()).toBe(0);
      expect(r.sw.health().detail.indication).toBeNull();
    });

    it('does without the pins a switch does not have', async () => {
      await r.sw.stop();
      r = rig({ relay: 17, ledRed: 23 });
      r.sw.start();
      await r.sw.indicate('denied', 1000, '');
      expect(r.board.pin('ledRed')!.read()).toBe(true);
      await vi.advanceTimersByTimeAsync(1000);
      expect(r.board.pin('ledRed')!.read()).toBe(false);
    });
  });

  it('stop clears every timer, turns the indicators off and leaves the relay as it is', async () => {
    r = rig();
    r.sw.start();
    await command(r.sw.setRelay(true, 'session-start'));
    await r.sw.indicate('warning', 60_000, 'idle');
    const { board } = r;
    const green = board.pin('ledGreen')!;
    const red = board.pin('ledRed')!;
    await r.sw.stop();
    expect(vi.getTimerCount()).toBe(0);
    expect([green.level, red.level, board.pin('buzzer')!.level]).toEqual([0, 0, 0]);
    expect([green.exported, red.exported, board.pin('buzzer')!.exported, board.pin('feedback')!.exported]).toEqual([false, false, false, false]);
    expect(board.pin('relay')!.exported).toBe(true);
    expect(board.pin('relay')!.read()).toBe(true);
    expect(r.sw.health().state).toBe('offline');
    await expect(r.sw.setRelay(false, 'session-end')).rejects.toThrow("gpio device 'laser': not started");
    await expect(r.sw.indicate('granted', 1000, '')).rejects.toThrow("gpio device 'laser': not started");

    // Started again, it finds the relay still on.
    r.sw.start();
    expect(r.sw.relayState).toEqual({ requested: true, sensed: true });
  });

  it('stop during a command ends it without a report', async () => {
    r = rig();
    r.sw.start();
    r.board.pin('feedback')!.stick(false);
    const pending = r.sw.setRelay(true, 'session-start');
    await vi.advanceTimersByTimeAsync(10);
    await r.sw.stop();
    await pending;
    expect(r.events).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('journals device.connected and reports its health', async () => {
    r = rig({ relay: 17, feedback: { line: 27, activeLow: true }, buzzer: 24 }, { name: 'Laser cutter' });
    r.sw.start();
    const [connected] = r.journal.events({ deviceId: 'laser', kind: 'device.connected' });
    expect(connected!.data).toEqual({
      target: 'simulated GPIO',
      simulated: true,
      chip: null,
      pins: { relay: { line: 17, activeLow: false, global: null }, feedback: { line: 27, activeLow: true, global: null }, buzzer: { line: 24, activeLow: false, global: null } },
      relay: { requested: false, sensed: false },
    });
    const h = r.sw.health();
    expect(h).toMatchObject({ id: 'laser', kind: 'gpio', name: 'Laser cutter', state: 'online', detail: { simulated: true, chip: null, relay: { requested: false, sensed: false } } });
    expect(r.sw.switchesTools).toBe(true);
  });
});

describe('GPIO switch on real pins', () => {
  const cfg = (extra: Record<string, unknown> = {}) => gpioSwitchSchema.parse({ id: 'laser', kind: 'gpio', pins: { relay: 17, ledGreen: 22 }, ...extra });
  let journal: Journal;
  const log = createLogger({ level: 'silent', format: 'json' }, new Writable({ write: (_c, _e, done) => done() }));

  beforeEach(() => {
    journal = Journal.open(tempDir('gpio-journal'));
  });
  afterEach(() => journal.close());

  it('refuses to start on a machine without GPIO unless simulated', () => {
    const missing = join(tempDir('no-gpio'), 'class', 'gpio');
    const sw = new GpioSwitch(cfg(), journal, log, { sysfsRoot: missing });
    expect(() => sw.start()).toThrow(`gpio device 'laser': this machine has no GPIO (${missing} not found); on a Pi enable`);
    expect(() => sw.start()).toThrow(/elsewhere set simulated: true$/);
    expect(journal.events({ deviceId: 'laser' })).toEqual([]);
  });

  it.skipIf(existsSync('/sys/class/gpio'))('refuses to start on this machine, which has no GPIO', () => {
    const sw = new GpioSwitch(cfg(), journal, log);
    expect(() => sw.start()).toThrow("gpio device 'laser': this machine has no GPIO (/sys/class/gpio not found)");
  });

  it('names the device and the chip when a line is beyond it', () => {
    const sw = new GpioSwitch(cfg({ chip: 'raspberrypi-exp-gpio' }), journal, log, { sysfsRoot: fakeSysfs(NEW_PI4) });
    expect(() => sw.start()).toThrow("gpio device 'laser': pins.relay (line 17), pins.ledGreen (line 22): chip raspberrypi-exp-gpio has only 8 lines (0 to 7)");
  });

  it.skipIf(process.getuid?.() === 0)('says when this user may not export lines', () => {
    const root = fakeSysfs(NEW_PI4);
    chmodSync(join(root, 'export'), 0o444);
    const sw = new GpioSwitch(cfg(), journal, log, { sysfsRoot: root });
    expect(() => sw.start()).toThrow(`gpio device 'laser': no permission to write ${root}/export`);
  });

  it.skipIf(existsSync('/sys/class/gpio'))('exports through onoff at chip base + line, and names the line when that fails', () => {
    // The chip resolves from the fake tree; onoff itself always writes the real /sys/class/gpio.
    const sw = new GpioSwitch(cfg(), journal, log, { sysfsRoot: fakeSysfs(PI5) });
    expect(() => sw.start()).toThrow("gpio device 'laser': cannot set up pins.relay (line 17, global 588): ");
  });
});
