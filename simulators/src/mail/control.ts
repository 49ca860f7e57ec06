/** The mail catcher's commands (see ../control.ts for the language). */
import { SimControl } from '../control.js';
import type { MailCatcher } from './mail-catcher.js';

export function mailControl(mail: MailCatcher): SimControl {
  return new SimControl(
    {
      list: { args: '', help: 'print the mail caught, one line each: number, time, recipients, subject', run: () => mail.caught.map((m) => `${m.n}\t${m.at}\t${m.to.join(', ')}\t${m.subject}`).join('\n') || 'no mail caught' },
      show: {
        args: '<n>',
        help: 'print message n as it was sent',
        run: (a) => {
          const n = a.number(0, 'n');
          const m = mail.caught.find((c) => c.n === n);
          if (!m) throw new Error(`show: no message ${n} (list shows them)`);
          return m.raw;
        },
      },
      clear: { args: '', help: 'forget the mail caught', run: () => mail.clear() },
    },
    null,
  );
}
