/**
 * Which GPIO chip carries the configured lines, and where its lines start. The sysfs
 * interface (and so onoff) numbers lines globally: chip base + line offset. Kernels before
 * 6.6 gave the Pi's main chip base 0; newer ones number chips from 512, and on a Pi 5 the
 * 40-pin header is on the RP1 chip, which is not the lowest one.
 */
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const SYSFS_GPIO = '/sys/class/gpio';

/** Chips that carry the 40-pin header, in order of preference (RP1 first: on a Pi 5 the SoC's own chips are listed too). */
export const PI_HEADER_CHIPS = ['pinctrl-rp1', 'pinctrl-bcm2711', 'pinctrl-bcm2835'] as const;

export interface GpioChip {
  label: string;
  /** Global number of the chip's line 0. */
  base: number;
  /** Number of lines. */
  ngpio: number;
}

/** Whether the sysfs GPIO interface exists at all on this machine. */
export function hasSysfsGpio(root = SYSFS_GPIO): boolean {
  return existsSync(root);
}

/** Whether this process may export lines (what onoff's `Gpio.accessible` checks). */
export function canExport(root = SYSFS_GPIO): boolean {
  try {
    accessSync(join(root, 'export'), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The chips under a sysfs root, lowest base first. */
export function listChips(root = SYSFS_GPIO): GpioChip[] {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch (err) {
    throw new Error(`cannot read ${root}: ${(err as Error).message}`, { cause: err });
  }
  const chips: GpioChip[] = [];
  for (const name of entries) {
    if (!/^gpiochip\d+$/.test(name)) continue;
    const dir = join(root, name);
    const read = (file: string) => readFileSync(join(dir, file), 'utf8').trim();
    const base = Number(read('base'));
    const ngpio = Number(read('ngpio'));
    if (!Number.isInteger(base) || !Number.isInteger(ngpio)) throw new Error(`${dir}: unreadable base or ngpio`);
    chips.push({ label: read('label'), base, ngpio });
  }
  return chips.sort((a, b) => a.base - b.base);
}

const describeChips = (chips: readonly GpioChip[]) => chips.map((c) => `${c.label} (base ${c.base})`).join(', ');

/** Picks the chip: the one labelled `label`, else a Pi header chip, else the lowest base. */
export function pickChip(chips: readonly GpioChip[], label?: string, root = SYSFS_GPIO): GpioChip {
  if (chips.length === 0) throw new Error(`no GPIO chips under ${root}: no gpiochip* entries (is the GPIO driver loaded?)`);
  if (label !== undefined) {
    const chip = chips.find((c) => c.label === label);
    if (!chip) throw new Error(`no chip labelled ${label}; found: ${describeChips(chips)}`);
    return chip;
  }
  for (const known of PI_HEADER_CHIPS) {
    const chip = chips.find((c) => c.label === known);
    if (chip) return chip;
  }
  return chips[0]!;
}

/** The chip for a config: by label, else the Pi header chip, else the lowest base. */
export function resolveChip(root = SYSFS_GPIO, label?: string): GpioChip {
  return pickChip(listChips(root), label, root);
}

/** Throws when a configured line offset does not exist on the chip. */
export function checkLines(chip: GpioChip, lines: readonly { role: string; line: number }[]): void {
  const bad = lines.filter((l) => l.line >= chip.ngpio);
  if (bad.length === 0) return;
  const what = bad.map((l) => `pins.${l.role} (line ${l.line})`).join(', ');
  throw new Error(`${what}: chip ${chip.label} has only ${chip.ngpio} lines (0 to ${chip.ngpio - 1})`);
}

/** The number sysfs and onoff use for a line of a chip. */
export const globalNumber = (chip: GpioChip, line: number): number => chip.base + line;
