/** The API's tokens and roles: every route refuses a caller without a token, a wrong token and a role it does not serve; wrong tokens are rate limited. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessStore } from '../gateway/src/access/store.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { createToken, listTokens, renewDemoTokens, revokeToken, TokenCheck, type Role } from '../gateway/src/http/tokens.js';
import { withArticle } from '../gateway/src/words.js';
import { tempDir } from './helpers.js';
import { startApiLab, type ApiLab } from './api-lab.js';

const ALL: Role[] = ['affiliate', 'custodian', 'maintainer', 'admin'];
const month = new Date().toISOString().slice(0, 7);

/** Each route, a request that passes validation, and the roles it serves. */
const ROUTES: [string, string, unknown, Role[]][] = [
  ['GET', '/api/me', undefined, ALL],
  ['GET', '/api/tools', undefined, ALL],
  ['GET', '/api/tools/printer', undefined, ALL],
  ['POST', '/api/tools/printer/status', { status: 'available' }, ['maintainer', 'admin']],
  ['POST', '/api/tools/printer/session/stop', {}, ['maintainer', 'admin']],
  ['GET', '/api/sessions/live', undefined, ALL],
  ['GET', '/api/sessions?limit=5', undefined, ALL],
  ['GET', `/api/billing/statement?from=${month}`, undefined, ['affiliate', 'custodian', 'admin']],
  ['GET', '/api/billing/payback', undefined, ALL],
  ['POST', '/api/billing/corrections', { sessionId: 'none', reason: 'test', void: true }, ['custodian', 'admin']],
  ['POST', '/api/billing/periods/2020-01/close', {}, ['custodian', 'admin']],
  ['GET', '/api/devices', undefined, ALL],
  ['GET', '/api/devices/n1', undefined, ['custodian', 'maintainer', 'admin']],
  ['POST', '/api/devices/n1/fault/clear', undefined, ['maintainer', 'admin']],
  ['POST', '/api/devices/n1/jobs/current/pause', undefined, ['maintainer', 'admin']],
  ['GET', '/api/maintenance', undefined, ['maintainer', 'admin']],
  ['POST', '/api/maintenance/printer/service', { note: 'cleaned the nozzle' }, ['maintainer', 'admin']],
  ['GET', '/api/maintenance/log', undefined, ['maintainer', 'admin']],
  ['GET', '/api/affiliates', undefined, ['custodian', 'admin']],
  ['GET', '/api/affiliates/ada', undefined, ['custodian', 'admin']],
  ['PUT', '/api/affiliates/zed', { name: 'Zed' }, ['custodian', 'admin']],
  ['POST', '/api/affiliates/bo/qualifications', { tool: 'printer' }, ['custodian', 'admin']],
  ['DELETE', '/api/affiliates/zed/qualifications/printer', undefined, ['custodian', 'admin']],
  ['GET', '/api/ledger', undefined, ['custodian', 'maintainer', 'admin']],
  ['GET', '/api/ledger/dead-letters', undefined, ['custodian', 'maintainer', 'admin']],
  ['GET', '/metrics', undefined, ['maintainer', 'admin']],
];

describe('API authentication and roles', () => {
  let lab: ApiLab;
  beforeAll(async () => {
    lab = await startApiLab();
  });
  afterAll(async () => lab?.stop());

  it('serves a short health without a token, the devices\' states to an affiliate, the full one to the other roles', async () => {
    const short = await lab.call('GET', '/api/health', null);
    expect(short.status).toBe(200);
    expect(Object.keys(short.body).sort()).toEqual(['gateway', 'startedAt', 'status', 'uptimeS', 'version']);
    const affiliate = await lab.call('GET', '/api/health', 'affiliate');
    expect(affiliate.body.devices).toEqual([{ id: 'n1', state: 'online' }]);
    expect(affiliate.body).not.toHaveProperty('ledger');
    const full = await lab.call('GET', '/api/health', 'maintainer');
    expect(full.body.devices).toEqual([expect.objectContaining({ id: 'n1', state: 'online', detail: expect.any(Object) })]);
    expect(full.body).toHaveProperty('storage.state', 'ok');
  });

  it.each(ROUTES)('%s %s refuses a request without a token and with a wrong one', async (method, url, body) => {
    const none = await lab.call(method, url, null, body);
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ error: 'unauthorized', message: expect.stringContaining('Authorization: Bearer') });
    const wrong = await lab.gw.app.inject({ method: method as 'GET', url, headers: { authorization: 'Bearer ovn_not-a-real-token' }, remoteAddress: `10.1.0.${ROUTES.findIndex((r) => r[1] === url)}`, ...(body ? { payload: body as object } : {}) });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({ error: 'bad-token' });
  });

  it.each(ROUTES)('%s %s serves exactly its roles, refusing the others with 403', async (method, url, body, roles) => {
    for (const role of ALL) {
      const res = await lab.call(method, url, role, body);
      if (roles.includes(role)) expect(res.status, `${role}: ${res.text}`).not.toBe(403);
      else {
        expect(res.status, `${role} should be refused`).toBe(403);
        expect(res.body).toEqual({ error: 'forbidden', message: expect.stringContaining(`needs ${roles.map(withArticle).join(' or ')} token`) });
      }
    }
  });

  it('tells who the token is, an affiliate token with the affiliate’s name', async () => {
    expect((await lab.call('GET', '/api/me', 'affiliate')).body).toEqual({ role: 'affiliate', affiliateId: 'ada', name: 'ada-phone', affiliateName: 'Ada', gateway: 'ovn-gateway' });
    expect((await lab.call('GET', '/api/me', 'admin')).body).toEqual({ role: 'admin', affiliateId: null, name: 'root', affiliateName: null, gateway: 'ovn-gateway' });
  });

  it('rate limits repeated wrong tokens from one address with 429 and Retry-After, never a valid token, and not other addresses', async () => {
    const from = (remoteAddress: string, token: string) => lab.gw.app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${token}` }, remoteAddress });
    for (let i = 0; i < 10; i++) expect((await from('10.9.9.9', `ovn_guess${i}`)).statusCode).toBe(401);
    const limited = await from('10.9.9.9', 'ovn_guess-again');
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.json()).toMatchObject({ error: 'too-many-requests', message: expect.stringContaining('10.9.9.9') });
    expect((await from('10.9.9.9', lab.tokens.admin)).statusCode).toBe(200);
    expect((await lab.gw.app.inject({ method: 'GET', url: '/api/me', remoteAddress: '10.9.9.9' })).statusCode).toBe(429);
    expect((await from('10.9.9.10', 'ovn_guess')).statusCode).toBe(401);
  });

  it('refuses a malformed Authorization header and a revoked token', async () => {
    expect((await lab.call('GET', '/api/me', null, undefined, { authorization: 'Basic abc' })).body).toMatchObject({ error: 'bad-token', message: expect.stringContaining('Bearer <token>') });
    const t = createToken(lab.gw.journal, { role: 'maintainer', name: 'temp' });
    expect((await lab.call('GET', '/api/me', null, undefined, { authorization: `Bearer ${t.token}` })).status).toBe(200);
    revokeToken(lab.gw.journal, t.id);
    expect((await lab.call('GET', '/api/me', null, undefined, { authorization: `Bearer ${t.token}` })).status).toBe(401);
    expect(() => revokeToken(lab.gw.journal, t.id)).toThrow(/already revoked/);
    expect(() => revokeToken(lab.gw.journal, 'nope')).toThrow(/no token "nope"/);
  });

  it('keeps only a hash and journals creation and revocation without the secret', async () => {
    const t = createToken(lab.gw.journal, { role: 'custodian', name: 'audit' });
    const row = lab.gw.journal.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(t.id) as Record<string, unknown>;
    expect(Object.values(row)).not.toContain(t.token);
    expect(row.hash).toMatch(/^[0-9a-f]{64}$/);
    const events = lab.gw.journal.events({ kinds: ['api-token.created', 'api-token.revoked'], limit: 1000 });
    expect(events.some((e) => e.data.tokenId === t.id && e.data.role === 'custodian')).toBe(true);
    expect(JSON.stringify(events)).not.toContain(t.token);
    expect(listTokens(lab.gw.journal).find((x) => x.id === t.id)).toMatchObject({ role: 'custodian', name: 'audit', revokedAt: null });
  });

  it('refuses tokens that do not fit their role', () => {
    expect(() => createToken(lab.gw.journal, { role: 'affiliate' })).toThrow(/needs the affiliate/);
    expect(() => createToken(lab.gw.journal, { role: 'custodian', affiliateId: 'ada' })).toThrow(/only affiliate tokens/);
    expect(() => createToken(lab.gw.journal, { role: 'root' as Role })).toThrow(/unknown role "root"/);
  });

  it('renews one demo token per role at each start, the affiliate one bound to its affiliate', () => {
    const check = new TokenCheck(lab.gw.journal);
    const first = renewDemoTokens(lab.gw.journal, 'ada');
    expect(first.map((t) => t.role)).toEqual(ALL);
    expect(check.check(first[0]!.token)).toMatchObject({ role: 'affiliate', affiliateId: 'ada', name: 'demo-affiliate' });
    const second = renewDemoTokens(lab.gw.journal, 'ada');
    for (const t of first) expect(check.check(t.token)).toBeNull();
    for (const t of second) expect(check.check(t.token)?.role).toBe(t.role);
    expect(listTokens(lab.gw.journal).filter((t) => t.name?.startsWith('demo-') && t.revokedAt === null)).toHaveLength(4);
  });

  it('serves the OpenAPI document without a token', async () => {
    const doc = await lab.call('GET', '/api/docs/json', null);
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/api/tools', '/api/sessions/live', '/api/billing/statement', '/api/billing/payback', '/api/maintenance', '/api/events']));
    expect(doc.body.paths['/api/billing/statement'].get.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['from', 'to', 'affiliate', 'tool', 'format']));
    expect(doc.body.paths['/api/me'].get.responses['401']).toBeDefined();
    const ui = await lab.call('GET', '/api/docs', null);
    expect(ui.status).toBe(200);
    expect(ui.headers['content-type']).toMatch(/text\/html/);
  });
});

describe('ovn-gateway tokens', () => {
  const cli = (...args: string[]) => promisify(execFile)(process.execPath, [join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js'), 'tokens', ...args], { encoding: 'utf8' });

  // eight processes of the command line, each a few seconds to start on a loaded machine
  it('creates a token shown once, lists tokens without secrets, revokes one, and refuses what does not fit', { timeout: 120_000 }, async () => {
    const data = tempDir('tokens');
    const journal0 = Journal.open(data);
    new AccessStore(journal0).put({ id: 'ada', name: 'Ada' });
    journal0.close();
    const made = await cli('create', '--role', 'affiliate', '--affiliate', 'ada', '--name', 'ada-phone', '--data', data);
    const [, token] = made.stdout.split('\n');
    const id = /^token ([0-9a-f]+) /.exec(made.stdout)![1]!;
    expect(token).toMatch(/^ovn_[A-Za-z0-9_-]{43}$/);
    const journal = Journal.open(data);
    try {
      expect(new TokenCheck(journal).check(token!)).toMatchObject({ id, role: 'affiliate', affiliateId: 'ada', name: 'ada-phone' });
    } finally {
      journal.close();
    }
    const listed = (await cli('list', '--data', data)).stdout;
    expect(listed).toContain(`${id}\taffiliate\tada\tada-phone`);
    expect(listed).not.toContain(token);
    expect((await cli('revoke', id, '--data', data)).stdout).toContain(`token ${id} revoked`);
    expect((await cli('list', '--data', data)).stdout).toMatch(new RegExp(`${id}.*revoked`));
    await expect(cli('revoke', id, '--data', data)).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('already revoked') });
    await expect(cli('create', '--role', 'affiliate', '--data', data)).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('--affiliate <id>') });
    await expect(cli('create', '--role', 'root', '--data', data)).rejects.toMatchObject({ stderr: expect.stringContaining('affiliate, custodian, maintainer, admin') });
  });
});
