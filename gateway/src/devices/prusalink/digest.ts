/**
 * HTTP Digest access authentication (RFC 7616, MD5, `qop=auth` or none), as PrusaLink asks for
 * it (its OpenAPI: `securitySchemes: digestAuth`): the challenge of a 401 is parsed, and each
 * request after it carries an Authorization header computed from it, with a counted nonce.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface DigestChallenge {
  realm: string;
  nonce: string;
  qop: string | null;
  opaque: string | null;
  algorithm: string;
  stale: boolean;
}

/** The Digest challenge of a WWW-Authenticate header; null when there is none. */
export function parseChallenge(header: string | null): DigestChallenge | null {
  if (!header || !/^Digest\s/i.test(header)) return null;
  const fields = new Map<string, string>();
  for (const m of header.slice(7).matchAll(/(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))/g)) fields.set(m[1]!.toLowerCase(), m[2] ?? m[3] ?? '');
  const realm = fields.get('realm');
  const nonce = fields.get('nonce');
  if (realm === undefined || nonce === undefined) return null;
  const qops = (fields.get('qop') ?? '').split(',').map((q) => q.trim());
  return { realm, nonce, qop: qops.includes('auth') ? 'auth' : null, opaque: fields.get('opaque') ?? null, algorithm: fields.get('algorithm') ?? 'MD5', stale: fields.get('stale')?.toLowerCase() === 'true' };
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

/** The Authorization header for one request; `nc` counts the requests made with this nonce (1, 2…). */
export function digestAuthorization(c: DigestChallenge, user: string, password: string, method: string, uri: string, nc: number, cnonce = randomBytes(8).toString('hex')): string {
  const ha1 = md5(`${user}:${c.realm}:${password}`);
  const ha2 = md5(`${method}:${uri}`);
  const ncText = nc.toString(16).padStart(8, '0');
  const response = c.qop ? md5(`${ha1}:${c.nonce}:${ncText}:${cnonce}:${c.qop}:${ha2}`) : md5(`${ha1}:${c.nonce}:${ha2}`);
  const parts = [`username="${user}"`, `realm="${c.realm}"`, `nonce="${c.nonce}"`, `uri="${uri}"`, `algorithm=MD5`, `response="${response}"`];
  if (c.qop) parts.push(`qop=${c.qop}`, `nc=${ncText}`, `cnonce="${cnonce}"`);
  if (c.opaque !== null) parts.push(`opaque="${c.opaque}"`);
  return `Digest ${parts.join(', ')}`;
}

/** What the server checks: the response a client with this password must have sent. */
export function expectedResponse(fields: Map<string, string>, password: string, method: string): string {
  const ha1 = md5(`${fields.get('username')}:${fields.get('realm')}:${password}`);
  const ha2 = md5(`${method}:${fields.get('uri')}`);
  return fields.get('qop') ? md5(`${ha1}:${fields.get('nonce')}:${fields.get('nc')}:${fields.get('cnonce')}:${fields.get('qop')}:${ha2}`) : md5(`${ha1}:${fields.get('nonce')}:${ha2}`);
}

/** The fields of an `Authorization: Digest …` header. */
export function parseAuthorization(header: string | undefined): Map<string, string> | null {
  if (!header || !/^Digest\s/i.test(header)) return null;
  const fields = new Map<string, string>();
  for (const m of header.slice(7).matchAll(/(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))/g)) fields.set(m[1]!.toLowerCase(), m[2] ?? m[3] ?? '');
  return fields;
}
