/** The simulated ledger's commands (see ../control.ts for the language). */
import { SimControl } from '../control.js';
import type { SimTransport } from '../transports.js';
import type { LedgerSim } from './ledger-sim.js';

const isoArg = (cmd: string, v: string | undefined, what: string): string => {
  if (!v || Number.isNaN(Date.parse(v))) throw new Error(`${cmd}: ${what} must be a date or date-time, e.g. 2026-11-01`);
  return new Date(v).toISOString();
};

export function ledgerControl(sim: LedgerSim): SimControl {
  // Pulling the cable of a ledger is refusing its connections.
  const cable: SimTransport = { address: sim.url, unplug: () => sim.refuse(true), replug: () => sim.refuse(false), close: () => sim.close() };
  return new SimControl(
    {
      refuse: { args: 'on|off', help: 'stop listening and cut open connections (on), listen again (off)', run: (a) => sim.refuse(a.onOff()) },
      '5xx': {
        args: '<n> [status]',
        help: 'answer the next n requests with a 5xx (default 503)',
        run: (a) => sim.status5xx(a.number(0, 'n'), a.words[1] === undefined ? 503 : a.number(1, 'status')),
      },
      slow: { args: '<ms>', help: 'wait this long before handling each request (0: stop)', run: (a) => sim.slow(a.number(0, 'ms')) },
      'too-many': { args: '<n> <retry-after-s>', help: 'answer the next n requests with 429 and Retry-After', run: (a) => sim.tooMany(a.number(0, 'n'), a.number(1, 'retry-after-s')) },
      reject: { args: '<n> [message]', help: 'refuse the next n records as invalid, with a message', run: (a) => sim.reject(a.number(0, 'n'), a.rest(1) || undefined) },
      'commit-then-drop': { args: '<n>', help: 'store the next n batches, then drop the connection without answering', run: (a) => sim.commitThenDrop(a.number(0, 'n')) },
      clear: { args: '', help: 'no more faults', run: () => sim.clearFaults() },
      truth: {
        args: '',
        help: 'print the ground truth as JSON: records held, ids held more than once (must be none), faults',
        run: () => {
          const t = sim.truth();
          const twice = Object.entries(t.countPerId).filter(([, n]) => n > 1);
          return JSON.stringify({ records: t.records.length, heldMoreThanOnce: Object.fromEntries(twice), faults: sim.faultState });
        },
      },
      records: { args: '', help: 'print every record held, one JSON line each', run: () => sim.truth().records.map((r) => JSON.stringify(r)).join('\n') },
      totals: {
        args: '<from> <to>',
        help: 'print the totals over the records created in [from, to)',
        run: (a) => JSON.stringify(sim.totals(isoArg('totals', a.words[0], 'from'), isoArg('totals', a.words[1], 'to'))),
      },
    },
    cable,
  );
}
