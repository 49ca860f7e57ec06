/**
 * The chain's head kept outside the events table: `journal.head` beside `journal.sqlite` records
 * the last event's id and hash, so that removing events from the end of the chain, which leaves
 * a chain that is intact in itself, is seen: `verify` compares the chain with it, and a journal
 * opened for writing records the loss as a `journal.head-mismatch` event before it moves the
 * head on.
 *
 * The head is written after commits, at most once a second and when the journal closes, as a
 * new file renamed over the old one (never half written). It may lag the chain by the events of
 * the last second (a crash), never lead it, except when a power cut loses commits that had not
 * reached the disk yet (synchronous = NORMAL): those are then missing, and reported as such.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { ChainHead } from './chain.js';

/** A head file that holds something else than a head: written by someone else than the journal. */
export class HeadError extends Error {}

/** How often the head is written at most while events are appended. */
export const HEAD_EVERY_MS = 1000;

/** The head file of a journal file: `journal.head` beside `journal.sqlite`. */
export function headFileOf(journalFile: string): string {
  return journalFile.replace(/\.sqlite$/, '') + '.head';
}

/** The head recorded beside a journal file; null when there is none; a HeadError when it is not a head. */
export function readHead(journalFile: string): ChainHead | null {
  const file = headFileOf(journalFile);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let head: unknown;
  try {
    head = JSON.parse(text);
  } catch {
    head = null;
  }
  const { id, hash } = (head ?? {}) as Partial<ChainHead>;
  if (!Number.isSafeInteger(id) || id! < 1 || typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
    throw new HeadError(`${file} is not a chain head (expected {"id": <event id>, "hash": <64 hex digits>}, found ${JSON.stringify(text.slice(0, 80))}): someone else wrote it; the gateway records this and writes a new one when it next opens the journal`);
  }
  return { id: id!, hash };
}

/** Writes the head beside a journal file: a new file renamed over the old one. */
export function writeHead(journalFile: string, head: ChainHead): void {
  const file = headFileOf(journalFile);
  // per process: two writers of one journal never share a half-written temporary file
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(head) + '\n');
  renameSync(temp, file);
}
