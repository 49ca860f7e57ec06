/**
 * The simulated printer's SD card: its files under their long names and the DOS 8.3 names the
 * FAT file system gives them (what Marlin lists and reports first), the one selected (M23) and
 * how far printing it has read, in bytes.
 */
export class SdCard {
  /** Long name of the selected file. */
  selected: string | null = null;
  /** Bytes read of the selected file, and its size. */
  byte = 0;
  total = 0;
  /** The card is in its slot and mounted. */
  mounted = true;
  private lines: string[] = [];
  private index = 0;
  private readonly dos: Map<string, string>;

  constructor(readonly files: Readonly<Record<string, string>>) {
    this.dos = dosNames(Object.keys(files));
  }

  /** The file's DOS 8.3 name. */
  dosName(file: string): string {
    return this.dos.get(file)!;
  }

  /** Selects a file by its long or its DOS name, whatever its case; false when the card has none. */
  select(name: string): boolean {
    const wanted = name.toLowerCase();
    const file = this.mounted ? Object.keys(this.files).find((f) => f.toLowerCase() === wanted || this.dosName(f).toLowerCase() === wanted) : undefined;
    if (!file) return false;
    this.selected = file;
    this.lines = this.files[file]!.split('\n');
    this.index = this.byte = 0;
    this.total = Buffer.byteLength(this.files[file]!, 'latin1');
    return true;
  }

  /** Lines of the selected file read so far. */
  get linesRead(): number {
    return this.index;
  }

  /** Part-way through the selected file. */
  get midFile(): boolean {
    return !!this.selected && this.byte > 0 && this.byte < this.total;
  }

  /** The next line of the selected file, or null at its end. */
  nextLine(): string | null {
    if (this.index >= this.lines.length || this.byte >= this.total) return null;
    const line = this.lines[this.index++]!;
    this.byte = Math.min(this.total, this.byte + line.length + 1);
    return line;
  }

  /** The card is pulled or released (M22): nothing is selected any more. */
  release(): void {
    this.mounted = false;
    this.selected = null;
  }
}

/**
 * FAT's short names: upper case, at most 8 + 3 characters; a long name that does not fit is cut
 * to 6 and numbered (`ABSOLU~1.GCO`).
 */
function dosNames(files: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set<string>();
  for (const file of files) {
    const dot = file.lastIndexOf('.');
    const clean = (s: string) => s.toUpperCase().replace(/[^A-Z0-9_-]/g, '');
    const base = clean(dot > 0 ? file.slice(0, dot) : file);
    const ext = clean(dot > 0 ? file.slice(dot + 1) : '').slice(0, 3);
    const fits = base.length <= 8 && (dot < 0 || file.length - dot - 1 <= 3) && file.toUpperCase() === `${base}${ext ? '.' + ext : ''}`.toUpperCase();
    let name = `${base}${ext ? '.' + ext : ''}`;
    for (let n = 1; !fits || used.has(name); n++) {
      name = `${base.slice(0, 8 - 1 - String(n).length)}~${n}${ext ? '.' + ext : ''}`;
      if (!used.has(name)) break;
    }
    used.add(name);
    out.set(file, name);
  }
  return out;
}
