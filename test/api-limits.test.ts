/** The API over a real socket at its limits: wrong tokens behind a reverse proxy, security headers, fastify's own refusals in the API's error shape. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiLab, type ApiLab } from './api-lab.js';

describe('API limits over a real socket', () => {
  let lab: ApiLab;
  beforeAll(async () => {
    lab = await startApiLab({ gateway: { http: { trustProxy: ['127.0.0.1'] } } });
  });
  afterAll(async () => lab?.stop());
  const get = (path: string, headers: Record<string, string> = {}, init: RequestInit = {}) => fetch(`${lab.gw.url}${path}`, { ...init, headers });

  it('counts wrong tokens per client behind a trusted proxy (X-Forwarded-For), per address from anyone else, and never refuses a valid token', async () => {
    const behind = (client: string, token: string) => get('/api/me', { authorization: `Bearer ${token}`, 'x-forwarded-for': client });
    for (let i = 0; i < 10; i++) expect((await behind('203.0.113.5', `ovn_guess${i}`)).status).toBe(401);
    const limited = await behind('203.0.113.5', 'ovn_guess');
    expect(limited.status).toBe(429);
    expect(await limited.json()).toEqual({ error: 'too-many-requests', message: expect.stringContaining('203.0.113.5') });
    expect((await behind('203.0.113.5', lab.tokens.custodian)).status).toBe(200);
    // another client behind the same proxy is not locked out
    expect((await behind('203.0.113.6', 'ovn_guess')).status).toBe(401);
    // from an address that is not a trusted proxy, the header is the caller's word and is ignored
    const untrusted = (token: string) => lab.gw.app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': `198.51.100.${token.length}` }, remoteAddress: '192.0.2.9' });
    for (let i = 0; i < 10; i++) expect((await untrusted(`ovn_${'x'.repeat(i)}`)).statusCode).toBe(401);
    expect((await untrusted('ovn_again')).json()).toMatchObject({ error: 'too-many-requests', message: expect.stringContaining('192.0.2.9') });
    expect((await untrusted(lab.tokens.admin)).statusCode).toBe(200);
  });

  it('lists every affiliate with all their badges and qualifications, however many badges an old allow-list gave one', async () => {
    const insert = lab.gw.journal.db.prepare('INSERT INTO badges (uid, affiliate_id) VALUES (?, ?)');
    const many = Array.from({ length: 3_000 }, (_, i) => (0x30000000 + i).toString(16).toUpperCase());
    lab.gw.journal.db.transaction(() => many.forEach((uid) => insert.run(uid, 'bo')))();
    for (let i = 0; i < 20; i++) {
      const saved = await lab.call('PUT', `/api/affiliates/p${i}`, 'custodian', { name: `P ${i}`, badges: [(0x40000000 + i).toString(16)], qualifications: [{ tool: 'printer', expires: '2031-01-01' }] });
      expect(saved.status, saved.text).toBe(200);
    }
    const listed = (await lab.call('GET', '/api/affiliates', 'custodian')).body as { id: string; badges: string[]; qualifications: unknown[] }[];
    expect(listed.map((a) => a.id)).toEqual(['ada', 'bo', ...Array.from({ length: 20 }, (_, i) => `p${i}`).sort()]);
    expect(listed.find((a) => a.id === 'bo')!.badges).toEqual(['0455667788', ...many].sort());
    expect(listed.find((a) => a.id === 'p7')).toMatchObject({ badges: ['40000007'], qualifications: [{ tool: 'printer', expires: '2031-01-01T23:59:59.999Z' }] });
    expect(listed.find((a) => a.id === 'ada')!.qualifications).toEqual([{ tool: 'printer', expires: null }]);
  });

  it('sends security headers on the dashboard, the API and its errors', async () => {
    const app = /src="(v\/[^"]+\/app\.js)"/.exec(await (await get('/')).text())![1];
    for (const [path, status] of [['/', 200], [`/${app}`, 200], ['/api/health', 200], ['/api/me', 401], ['/nothing', 404]] as const) {
      const res = await get(path);
      expect(res.status, path).toBe(status);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, path).toContain("default-src 'self'");
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).not.toContain('upgrade-insecure-requests');
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
    }
    // Swagger UI's page alone allows inline styles
    const docs = await get('/api/docs/static/index.html');
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-security-policy')).toMatch(/^default-src 'self'; .*style-src 'self' 'unsafe-inline'; frame-ancestors 'none'/);
  });

  it("answers fastify's own refusals in the API's error shape, without repeating a long URL", async () => {
    const long = 'a'.repeat(5000);
    const refusals: [string, RequestInit, number, string][] = [
      [`/api/tools/${long}`, {}, 414, 'uri-too-long'],
      ['/api/tools/%zz', {}, 400, 'bad-request'],
      [`/nothing/${'b'.repeat(1500)}`, {}, 404, 'not-found'],
      ['/api/affiliates/ada', { method: 'PUT', body: '<name>Ada</name>' }, 415, 'unsupported-media-type'],
      ['/js/..%2f..%2fpackage.json', {}, 404, 'not-found'],
      [`/js/${'c'.repeat(1000)}`, {}, 404, 'not-found'],
    ];
    refusals.push([`/api/tools/${'x'.repeat(20_000)}`, {}, 431, 'headers-too-large']);
    for (const [path, init, status, error] of refusals) {
      const res = await get(path, { authorization: `Bearer ${lab.tokens.admin}`, ...(init.body ? { 'content-type': 'application/xml' } : {}) }, init);
      const text = await res.text();
      expect(res.status, `${path.slice(0, 40)}: ${text}`).toBe(status);
      expect(res.headers.get('content-type'), path.slice(0, 40)).toMatch(/^application\/json/);
      expect(JSON.parse(text), path.slice(0, 40)).toEqual({ error, message: expect.any(String) });
      expect(text.length, path.slice(0, 40)).toBeLessThan(400);
    }
  });
});
