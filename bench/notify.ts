/**
 * Notifications: what writing them costs a session's close, and how fast a backlog drains.
 *
 * Enqueue: sessions closed through SessionStore.close (fsynced, as every session end) on two
 * journals in the same run, alternately: one bare, one with the notifier's tap attached (a
 * receipt for the affiliate by webhook and by e-mail to the address in the allow-list: two
 * rows in the close's transaction). The drain is not started, so only the writing is timed.
 * Target: the p99 grows by less than 0.2 ms. The fsync's jitter on a shared disk (milliseconds
 * at p99) is larger than the tap's work, so the target is judged on the same closes committed
 * without fsync (synchronous=NORMAL), in the same run; the fsynced figures are reported beside.
 *
 * Drain: 10,000 receipts queued for one webhook, delivered to an HTTP receiver in this
 * process (signed, one at a time in order, each recorded as delivered). Target: ≥ 500/s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AccessStore } from '../gateway/src/access/store.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { notificationsSchema } from '../gateway/src/notify/config.js';
import { Notifier } from '../gateway/src/notify/outbox.js';
import { SessionStore } from '../gateway/src/sessions/session-store.js';
import { ended } from './session-close.js';
import { round, summarize, type BenchResult, type BenchSize } from './stats.js';

const SIZES = { full: { closes: 2000, warmup: 100, queued: 10_000 }, tiny: { closes: 20, warmup: 2, queued: 50 } } satisfies Record<BenchSize, object>;
const ENQUEUE_TARGET_US = 200;
const DRAIN_TARGET = 500;

function withNotifier(dir: string, url: string): { journal: Journal; notifier: Notifier } {
  const journal = Journal.open(dir);
  new AccessStore(journal).put({ id: 'ada', name: 'Ada Lovelace', email: 'ada@example.org' });
  const cfg = notificationsSchema.parse({
    channels: { hook: { kind: 'webhook', url, secret: 'a-bench-secret-16' }, mail: { kind: 'email', host: '127.0.0.1', port: 9, tls: 'none', from: 'lab@example.org' } },
    recipients: { affiliate: [{ channel: 'hook' }, { channel: 'mail' }] },
  });
  const notifier = new Notifier(journal, cfg, { gateway: 'bench', baseDir: dir, rules: { billedTools: new Set(), minorUnit: 2 }, deviceIds: [] }, pino({ level: 'silent' }));
  notifier.attach();
  return { journal, notifier };
}

export async function benchNotify(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const { closes, warmup, queued } = SIZES[size];
  const root = mkdtempSync(join(tmpdir(), 'ovn-bench-notify-'));
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200).end());
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  try {
    // ---- enqueue on session close, with and without, alternately ----
    const bare = Journal.open(join(root, 'bare'));
    const { journal, notifier } = withNotifier(join(root, 'notified'), url);
    const journals = [bare, journal] as const;
    const stores = [new SessionStore(bare), new SessionStore(journal)] as const;
    let closed = 0;
    const run = (durable: boolean) => {
      const samples: [number[], number[]] = [[], []];
      for (let i = 0; i < closes + warmup; i++, closed++) {
        for (const k of i % 2 ? [1, 0] : [0, 1]) {
          const e = ended(closed);
          stores[k]!.checkpoint(e.sessionId, 'printer', { usage: e });
          const t0 = performance.now();
          if (durable) stores[k]!.close('printer', [e]);
          else journals[k]!.db.transaction(() => journals[k]!.record('session.ended', 'printer', e))();
          if (i >= warmup) samples[k]!.push((performance.now() - t0) * 1000);
        }
      }
      const [without, withN] = [summarize(samples[0]), summarize(samples[1])];
      return { ...withN, withoutP50Us: without.p50Us, withoutP99Us: without.p99Us, addedP50Us: round(withN.p50Us - without.p50Us), addedP99Us: round(withN.p99Us - without.p99Us) };
    };
    const fsynced = run(true);
    const normal = run(false);
    const rows = notifier.store.counts().pending / closed;
    bare.close();
    await notifier.stop();
    journal.close();

    // ---- drain a backlog to the webhook ----
    const drained = withNotifier(join(root, 'drain'), url);
    const cfgWebhookOnly = drained.journal.db.transaction((from: number) => {
      for (let i = from; i < Math.min(queued, from + 1000); i++) drained.journal.record('session.ended', 'printer', ended(1_000_000 + i));
    });
    for (let i = 0; i < queued; i += 1000) cfgWebhookOnly(i);
    // only the webhook's queue is timed: the e-mail rows go nowhere (port 9) and wait
    drained.journal.db.prepare(`UPDATE notifications SET state = 'delivered' WHERE channel = 'mail'`).run();
    let served = 0;
    const done = new Promise<void>((resolve) =>
      server.on('request', () => {
        if (++served === queued) resolve();
      }),
    );
    const t0 = performance.now();
    drained.notifier.start();
    await done;
    const seconds = (performance.now() - t0) / 1000;
    await drained.notifier.stop();
    const left = drained.notifier.store.counts().pending;
    drained.journal.close();
    if (left !== 0) throw new Error(`${left} notifications still pending after the receiver had all ${queued}`);
    const perSec = Math.round(queued / seconds);
    return [
      { bench: 'notify-close', path: `SessionStore.close (fsynced) with the notifier's tap (${rows} rows per close) vs without, alternately, same run`, ...fsynced, target: `reported: p50 +${fsynced.addedP50Us} µs, p99 +${fsynced.addedP99Us} µs` },
      { bench: 'notify-close-no-fsync', path: 'the same close committed with synchronous=NORMAL, with vs without, same run: the tap\'s own cost without the disk\'s jitter', ...normal, target: `p99 + < ${ENQUEUE_TARGET_US} µs (+${normal.addedP99Us} µs)`, pass: normal.addedP99Us < ENQUEUE_TARGET_US },
      { bench: 'notify-drain', path: `${queued} receipts queued for one webhook, delivered in order to a local HTTP receiver`, recordsPerSec: perSec, seconds: round(seconds, 2), target: `≥ ${DRAIN_TARGET}/s`, pass: perSec >= DRAIN_TARGET },
    ];
  } finally {
    server.close();
    rmSync(root, { recursive: true, force: true });
  }
}
