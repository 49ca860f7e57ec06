/** The simulated printer's SD card: its files, the one selected (M23) and how far printing it has read. */
export class SdCard {
  selected: string | null = null;
  /** Bytes read of the selected file, and its size. */
  byte = 0;
  total = 0;
  private lines: string[] = [];
  private index = 0;

  constructor(readonly files: Readonly<Record<string, string>>) {}

  /** Selects a file by name, whatever its case; false when the card has none. */
  select(name: string): boolean {
    const file = Object.keys(this.files).find((f) => f.toLowerCase() === name.toLowerCase());
    if (!file) return false;
    this.selected = file;
    this.lines = this.files[file]!.split('\n');
    this.index = this.byte = 0;
    this.total = this.files[file]!.length;
    return true;
  }

  /** Part-way through the selected file. */
  get midFile(): boolean {
    return !!this.selected && this.index > 0 && this.index < this.lines.length;
  }

  /** The next line of the selected file, or null at its end. */
  nextLine(): string | null {
    if (this.index >= this.lines.length) return null;
    const line = this.lines[this.index++]!;
    this.byte += line.length + 1;
    return line;
  }
}
