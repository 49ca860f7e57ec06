/** The simulated RDM6300 reader's commands (see ../control.ts for the language). */
import { SimControl, type Args } from '../control.js';
import type { SimTransport } from '../transports.js';
import type { Rdm6300Sim } from './rdm6300-sim.js';

/** More noise than this in one command is a typo, not a test. */
const MAX_GARBAGE = 1_000_000;

function card(a: Args): string {
  const uid = a.words[0];
  if (!uid || !/^[0-9a-fA-F]{10}$/.test(uid)) throw new Error(`${a.cmd}: expected a card id of 10 hex digits (5 bytes), e.g. 1A0044C3F1`);
  return uid;
}

export function rfidControl(sim: Rdm6300Sim, transport: SimTransport | null): SimControl {
  return new SimControl(
    {
      // Not awaited: a scenario's `after` counts from the tap, not from the card's removal.
      tap: { args: '<card hex>', help: 'hold a card in the field briefly (e.g. tap 1A0044C3F1)', run: (a) => void sim.tap(card(a)) },
      hold: {
        args: '<card hex> <seconds>',
        help: 'hold a card in the field; the reader repeats its frame until it is taken away',
        run: (a) => void sim.tap(card(a), a.number(1, 'seconds') * 1000),
      },
      garbage: {
        args: '<n>',
        help: 'send n bytes of line noise',
        run: (a) => {
          const n = a.number(0, 'n');
          if (n > MAX_GARBAGE) throw new Error(`garbage: at most ${MAX_GARBAGE} bytes at a time`);
          sim.garbage(n);
        },
      },
      'bad-checksum': { args: '<card hex>', help: 'send one frame of this card with a wrong checksum', run: (a) => sim.badChecksum(card(a)) },
      truth: { args: '', help: 'print the ground truth as JSON (taps made, frames, injected faults)', run: () => JSON.stringify(sim.truth()) },
    },
    transport,
  );
}
