/**
 * Everything the command line prints goes through here, so that text it did not write (a
 * reason, a name, a device's message) cannot drive the terminal: control characters but for
 * newlines and tabs (an escape sequence can set the window title or clear the screen) and the
 * bidirectional overrides and isolates (they reorder what is shown) are printed as escapes.
 */

// C0 but \t and \n, DEL, C1; the bidi marks, embeddings, overrides and isolates.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Text with every character that could drive a terminal written as an escape (ESC as \x1b, U+202E as \u202e). */
export function printable(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** A line on standard output. */
export const out = (line: string): void => void process.stdout.write(`${printable(line)}\n`);

/** A line on standard error. */
export const complain = (line: string): void => void process.stderr.write(`${printable(line)}\n`);

/** Text as it is (its own line ends) on standard output. */
export const write = (text: string): void => void process.stdout.write(printable(text));

/** A list as tab-separated lines under a header row, or `empty` (what to do to have some) when there is nothing to list. */
export function list(header: readonly string[], rows: readonly (readonly unknown[])[], empty: string): void {
  if (rows.length === 0) return out(empty);
  for (const r of [header, ...rows]) out(r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))).join('\t'));
}
