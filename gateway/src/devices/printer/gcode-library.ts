/**
 * The G-code files the gateway holds for a printer: uploaded to it, or printed through it. A
 * print from the printer's own SD card whose file is here (same name, same size) is metered
 * exactly from the file. Kept on disk under `<dataDir>/gcode/<printer>/`, profiled once.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { profileOf, type FileProfile } from './file-meter.js';

export class GcodeLibrary {
  private readonly profiles = new Map<string, FileProfile>();

  constructor(
    private readonly dir: string,
    private readonly positioningSetsE: boolean,
  ) {}

  /** Keeps a file; the same name again replaces it. It is profiled when a print of it is first looked for. */
  put(name: string, text: string): void {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(join(this.dir, encodeURIComponent(name.toLowerCase())), text, 'latin1');
    this.profiles.delete(name.toLowerCase());
  }

  /** The file of this name (any case) and size, if the gateway holds it. */
  find(name: string, bytes: number): FileProfile | null {
    const key = name.toLowerCase();
    let p = this.profiles.get(key);
    if (!p) {
      let text: string;
      try {
        text = readFileSync(join(this.dir, encodeURIComponent(key)), 'latin1');
      } catch {
        return null;
      }
      p = profileOf(name, text, this.positioningSetsE);
      this.profiles.set(key, p);
    }
    return p.bytes === bytes ? p : null;
  }
}
