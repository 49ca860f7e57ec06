/**
 * The dashboard in a real headless Chromium against the simulated lab of `npm start`: each role
 * logs in, Ada watches her running cost change, the custodian corrects her session, exports the
 * CSV and closes the month, a maintainer blocks the printer. Screenshots of each view land in
 * test-output/screenshots/.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../gateway/src/http/tokens.js';
import { createLogger } from '../gateway/src/log.js';
import { startLab, type RunningLab } from '../simulators/src/lab.js';
import { PrinterSim } from '../simulators/src/printer/printer-sim.js';
import { simulatedLabOnFreePorts, waitFor } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
/** Skipped on a laptop without Chromium; in CI (`CI=true`) it runs and fails loudly. */
const skip = !existsSync(CHROMIUM) && process.env.CI !== 'true';
const SCREENSHOTS = join(import.meta.dirname, '..', 'test-output', 'screenshots');
const LAPTOP = { width: 1280, height: 860 };
const PHONE = { width: 360, height: 760 };

/** The lab of `npm start` with every simulator on a free port and the journal in a temp dir. */
async function labOnFreePorts(): Promise<RunningLab> {
  const loaded = await simulatedLabOnFreePorts('dashboard');
  const quiet = new Writable({ write: (_chunk, _enc, done) => done() });
  return startLab(loaded, { logger: createLogger({ level: 'warn', format: 'json' }, quiet) });
}

describe.skipIf(skip)('the dashboard in Chromium, against the simulated lab', () => {
  let gw: RunningLab;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const tokens = {} as Record<'affiliate' | 'custodian' | 'maintainer' | 'admin', string>;

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    [gw, browser] = await Promise.all([labOnFreePorts(), chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })]);
    tokens.affiliate = createToken(gw.journal, { role: 'affiliate', affiliateId: 'ada', name: 'Ada' }).token;
    tokens.custodian = createToken(gw.journal, { role: 'custodian', name: 'Carla (custodian)' }).token;
    tokens.maintainer = createToken(gw.journal, { role: 'maintainer', name: 'Max (maintainer)' }).token;
    tokens.admin = createToken(gw.journal, { role: 'admin', name: 'admin' }).token;
  }, 60_000);

  afterAll(async () => {
    for (const c of contexts) await c.close();
    await browser?.close();
    await gw?.stop();
  });

  async function open(path: string, viewport = LAPTOP): Promise<Page> {
    // figures and dates as the assertions expect them, whatever the machine's settings
    const context = await browser.newContext({ viewport, acceptDownloads: true, locale: 'en-US', timezoneId: 'UTC' });
    contexts.push(context);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (m) => m.type() === 'error' && !m.text().includes('status of 40') && errors.push(m.text()));
    await page.goto(`${gw.url}${path}`);
    Object.assign(page, { scriptErrors: errors });
    return page;
  }
  const scriptErrors = (page: Page) => (page as Page & { scriptErrors: string[] }).scriptErrors;
  /** Retries an expectation for a while: pages load and update asynchronously. */
  const poll = <T>(value: () => Promise<T> | T) => expect.poll(value, { timeout: 20_000 });
  const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  const api = async <T = Record<string, unknown>>(path: string, token: string) => (await (await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } })).json()) as T;

  it('serves the page with no-cache and refuses a wrong token with a message', async () => {
    const res = await fetch(`${gw.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(await res.text()).toContain('<script type="module" src="js/app.js">');
    // the files are served beside the API, not over it: an unknown API route is still the API's 404
    const missing = await fetch(`${gw.url}/api/no-such-route`, { headers: { authorization: `Bearer ${tokens.admin}` } });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: 'not-found' });

    const page = await open('/');
    await page.getByLabel('Token').fill('ovn_not-a-real-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await poll(() => page.getByRole('alert').textContent()).toMatch(/refused this token/);
    await poll(() => page.getByLabel('Token').isVisible()).toBe(true);
  });

  it('Ada arrives through her login link and watches the cost of her print grow live', { timeout: 150_000 }, async () => {
    const page = await open(`/#token=${tokens.affiliate}`);
    // the token leaves the address bar at once and stays in this tab only
    await poll(() => page.url()).not.toContain('token=');
    expect(await page.evaluate('Object.values(sessionStorage)')).toContain(tokens.affiliate);
    await poll(() => page.locator('#who').textContent()).toBe('Ada · Affiliate');

    const card = page.locator('.session[data-tool="printer"]:not(.ended)');
    await card.waitFor({ timeout: 30_000 });
    const cost = card.locator('.cost .figure');
    const first = (await cost.textContent())!;
    expect(first).toMatch(/\d\.\d{2}/);
    // the running cost changes as the printer extrudes, without reloading the page
    const later = await waitFor(async () => {
      const now = await cost.textContent();
      return now !== first && now;
    }, 90_000, 'the running cost to change');
    expect(later).toMatch(/\d\.\d{2}/);
    expect(await card.locator('.split').textContent()).toMatch(/Material.*Maintenance fund.*Infrastructure fund.*Co-owner payback/s);
    expect(await card.locator('.figures').textContent()).toMatch(/Material[\d.,]+ g/);
    expect(await page.locator('.tool-list li[data-tool="printer"]').textContent()).toContain('In use');
    await shot(page, 'affiliate');
    // on a phone: the same page, no sideways scrolling
    await page.setViewportSize(PHONE);
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE.width);
    await shot(page, 'phone-affiliate');
    await page.setViewportSize(LAPTOP);

    // the end: the final charge stays on screen and the session appears among this month's
    const ended = page.locator('.session.ended[data-tool="printer"]');
    await ended.waitFor({ timeout: 120_000 });
    const final = (await ended.locator('.cost').textContent())!;
    expect(final).toMatch(/Final cost.*\d\.\d{2}/);
    const [charged] = await api<{ charge: { total: string } | null }[]>('/api/sessions?tool=printer', tokens.affiliate);
    expect(charged!.charge).not.toBeNull();
    await poll(() => page.locator('.table-title').first().textContent()).toMatch(/^This month: 1 session, CA\$\d/);
    expect(final).toContain(charged!.charge!.total);
    expect(scriptErrors(page)).toEqual([]);
  });

  it('the custodian corrects Ada’s session with a reason, exports the CSV and closes the month', { timeout: 60_000 }, async () => {
    const page = await open('/');
    await page.getByLabel('Token').fill(tokens.custodian);
    await page.getByRole('button', { name: 'Log in' }).click();
    await poll(() => page.locator('#who').textContent()).toBe('Carla (custodian) · Custodian');

    const total = page.locator('[data-figure="total"]');
    await total.waitFor();
    const before = (await total.textContent())!;
    // eleven co-owners, each with a bar
    await poll(() => page.locator('.payback[data-tool="printer"] .bars li').count()).toBe(11);

    await page.getByLabel('Affiliate', { exact: true }).selectOption('ada');
    await page.locator('.table-title', { hasText: 'Ada Lovelace' }).waitFor();

    // the spool was weighed after the print: more filament went in than the printer reported
    const [adas] = await api<{ sessionId: string }[]>('/api/sessions?affiliate=ada&tool=printer', tokens.custodian);
    await page.getByLabel('Session', { exact: true }).selectOption(adas!.sessionId);
    await page.getByLabel('Change', { exact: true }).selectOption('filamentG');
    await page.getByLabel('Grams used').fill('40');
    await page.getByLabel('Reason').fill('spool weighed after the print: 40 g used');
    await page.getByRole('button', { name: 'Record correction' }).click();
    await poll(() => page.getByRole('alert').textContent()).toMatch(/Correction recorded/);
    await poll(() => total.textContent()).not.toBe(before);
    await page.getByText('spool weighed after the print: 40 g used').waitFor();
    await shot(page, 'custodian');

    // the CSV as downloaded: Ada's charge and the correction with its reason
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^statement-\d{4}-\d{2}-\d{4}-\d{2}\.csv$/);
    const csv = readFileSync((await download.path())!, 'utf8').trim().split('\n');
    expect(csv[0]).toMatch(/^period,session,tool,affiliate,/);
    expect(csv.filter((l) => l.includes(',printer,ada,'))).toHaveLength(2);
    expect(csv.some((l) => l.includes('spool weighed after the print: 40 g used'))).toBe(true);

    // closing asks first; cancelling changes nothing
    const close = page.getByRole('button', { name: /^Close / });
    await close.click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    expect((await api(`/api/billing/statement?from=${new Date().toISOString().slice(0, 7)}`, tokens.custodian)).closedPeriods).toEqual([]);
    await close.click();
    await page.getByRole('dialog').getByRole('button', { name: /^Close / }).click();
    await poll(() => page.locator('.toolbar .pill').textContent()).toBe('Closed');
    expect(await close.isDisabled()).toBe(true);
    expect(scriptErrors(page)).toEqual([]);
  });

  it('a maintainer sees the printer’s health and blocks it with a reason', { timeout: 60_000 }, async () => {
    const page = await open(`/#token=${tokens.maintainer}`);
    const card = page.locator('article.tool[data-tool="printer"]');
    await card.waitFor();
    await poll(() => card.textContent()).toMatch(/Hotend \d+ °C/);
    expect(await card.textContent()).toMatch(/Onlineyes/);

    await card.getByText('Change status or log a service').click();
    await card.getByLabel('Status', { exact: true }).selectOption('blocked');
    await card.getByLabel('Reason', { exact: true }).fill('nozzle clogged');
    await card.getByRole('button', { name: 'Apply' }).click();
    await poll(() => card.locator('header .pill').textContent()).toBe('Blocked');
    expect(await card.locator('.reason').textContent()).toContain('Blocked: nozzle clogged');
    const tool = await api<{ status: string; statusReason: string }>('/api/tools/printer', tokens.maintainer);
    expect(tool).toMatchObject({ status: 'blocked', statusReason: 'nozzle clogged' });
    // the change is in the maintenance log
    await poll(() => page.locator('section', { hasText: 'Maintenance log' }).locator('tbody tr').first().textContent()).toMatch(/status: blocked.*nozzle clogged/);

    await card.getByLabel('Service note').fill('nozzle replaced');
    await card.getByRole('button', { name: 'Log service' }).click();
    await poll(() => card.textContent()).toMatch(/Last service.*nozzle replaced/);

    // the printer's firmware halts: the alert arrives and the card shows the fault
    const printer = gw.simulators.find((s) => s.sim instanceof PrinterSim)!.sim as PrinterSim;
    printer.thermalRunaway();
    await poll(() => page.locator('.alerts li').first().textContent()).toMatch(/Error.*mk3s.*Thermal Runaway/i);
    await poll(() => card.locator('[data-device="mk3s"] .fault').textContent()).toMatch(/Fault: .*Thermal Runaway/i);
    await shot(page, 'maintainer');

    // and Ada's page shows it blocked, live
    const ada = await open(`/#token=${tokens.affiliate}`, PHONE);
    await poll(() => ada.locator('.tool-list li[data-tool="printer"]').textContent()).toMatch(/Blocked.*nozzle clogged/);
    await open(`/#token=${tokens.maintainer}`, PHONE).then(async (p) => {
      await p.locator('article.tool').first().waitFor();
      expect(await p.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE.width);
      await shot(p, 'phone-maintainer');
    });
    expect(scriptErrors(page)).toEqual([]);
  });

  it('an admin reaches all three views; a maintainer only their own', async () => {
    const page = await open(`/#token=${tokens.admin}`);
    const nav = page.getByRole('navigation', { name: 'Views' });
    await poll(() => nav.getByRole('link').allTextContents()).toEqual(['My use', 'Billing', 'Tools & health']);
    for (const [link, view] of [['Billing', 'custodian'], ['Tools & health', 'maintainer'], ['My use', 'affiliate']] as const) {
      await nav.getByRole('link', { name: link }).click();
      await poll(() => page.locator('#view').getAttribute('data-view')).toBe(view);
      await poll(() => nav.locator('[aria-current="page"]').textContent()).toBe(link);
    }
    const maintainer = await open(`/#/custodian`);
    await maintainer.getByLabel('Token').fill(tokens.maintainer);
    await maintainer.getByRole('button', { name: 'Log in' }).click();
    await poll(() => maintainer.locator('#view').getAttribute('data-view')).toBe('maintainer');
    expect(await maintainer.getByRole('navigation', { name: 'Views' }).isVisible()).toBe(false);

    // logging out forgets the token
    await maintainer.getByRole('button', { name: 'Log out' }).click();
    await poll(() => maintainer.getByLabel('Token').isVisible()).toBe(true);
    expect(await maintainer.evaluate('sessionStorage.length')).toBe(0);
    expect(scriptErrors(page)).toEqual([]);
  });
});
