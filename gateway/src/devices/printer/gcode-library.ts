/**
 * The G-code files the gateway holds for a printer: uploaded to it, or printed through it. A
 * print from the printer's own SD card whose file is here (same name, same size) is metered
 * exactly from the file. Kept on disk under `<dataDir>/gcode/<printer>/`, profiled once.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { profileOf, type FileProfile } from './file-meter.js';

export class GcodeLibrary {
  private readonly profiles = new Map<string, FileProfile>();

  constructor(
    private readonly dir: string,
    private readonly positioningSetsE: boolean,
  ) {}

  /** Keeps a file; the same name again replaces it. */
  put(name: string, text: string): FileProfile {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(join(this.dir, encodeURIComponent(name.toLowerCase())), text, 'latin1');
    const p = profileOf(name, text, this.positioningSetsE);
    this.profiles.set(name.toLowerCase(), p);
    return p;
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

  /** Names of the files held. */
  list(): string[] {
    try {
      return readdirSync(this.dir).map(decodeURIComponent);
    } catch {
      return [];
    }
  }
}
