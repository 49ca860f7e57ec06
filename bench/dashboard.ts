/**
 * The affiliate's first load of the dashboard on a phone: the simulated lab of `npm start`,
 * Ada opening her login link in a fresh Chromium (empty cache) at 360×740 with the network
 * throttled through CDP (150 ms latency, 1.6 Mbit/s down, 750 kbit/s up). Reports the bytes
 * transferred until her page is complete (its history included; the live event stream left
 * out) and when the first meaningful content appears: her session card, or the sentence
 * that none is running (targets ≤ 40 KB and ≤ 1.0 s).
 */
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { createToken } from '../gateway/src/http/tokens.js';
import { CHROMIUM, labOnFreePorts } from '../test/helpers.js';
import { median, round, type BenchResult, type BenchSize } from './stats.js';

const SIZES = { full: { loads: 7 }, tiny: { loads: 1 } } satisfies Record<BenchSize, object>;
const PHONE_NETWORK = { offline: false, latency: 150, downloadThroughput: 1_600_000 / 8, uploadThroughput: 750_000 / 8 };
const TARGET_KB = 40;
const TARGET_MS = 1000;

/** Marks, in the page, when Ada's session (or the word that none runs) first shows. */
const CONTENT = '#view .session, #view .live-list p';
const MARK_CONTENT = `new MutationObserver((_, o) => {
  if (document.querySelector('${CONTENT}')) { window.__firstContent = performance.now(); o.disconnect(); }
}).observe(document, { childList: true, subtree: true });`;

export async function benchDashboard(size: BenchSize = 'full'): Promise<BenchResult[]> {
  if (!existsSync(CHROMIUM)) return [{ bench: 'dashboard first load (affiliate, phone)', skipped: `no Chromium at ${CHROMIUM}` }];
  const { loads } = SIZES[size];
  const lab = await labOnFreePorts();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const token = createToken(lab.journal, { role: 'affiliate', affiliateId: 'ada', name: 'Ada' }).token;
    const bytes: number[] = [];
    const firstContentMs: number[] = [];
    for (let i = 0; i < loads; i++) {
      const context = await browser.newContext({ viewport: { width: 360, height: 740 }, locale: 'en-US' });
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.emulateNetworkConditions', PHONE_NETWORK);
      let transferred = 0;
      cdp.on('Network.loadingFinished', (e) => (transferred += e.encodedDataLength));
      await page.addInitScript(MARK_CONTENT);
      await page.goto(`${lab.url}/#token=${token}`);
      // a selector, not a predicate: the page's Content-Security-Policy forbids what evaluates a string
      await page.locator(CONTENT).first().waitFor();
      // complete: the history is shown (a table or the sentence that there is none yet)
      await page.locator('section[aria-labelledby="s-my-sessions"]').locator('.table-block, p:not(:has-text("Loading"))').first().waitFor();
      firstContentMs.push(await page.evaluate('window.__firstContent'));
      bytes.push(transferred);
      await context.close();
    }
    const kb = round(median(bytes) / 1024);
    const ms = round(median(firstContentMs), 0);
    return [
      { bench: 'dashboard first load transferred (affiliate, phone)', kb, kbMax: round(Math.max(...bytes) / 1024), loads, target: `≤ ${TARGET_KB} KB`, pass: kb <= TARGET_KB },
      { bench: 'dashboard first meaningful content (affiliate, throttled phone)', ms, msMax: round(Math.max(...firstContentMs), 0), loads, target: `≤ ${TARGET_MS} ms`, pass: ms <= TARGET_MS },
    ];
  } finally {
    await browser.close();
    await lab.stop();
  }
}
