/**
 * API tokens: who may call the HTTP API, with which role. A token is 32 random bytes, shown
 * once when it is made; the journal database keeps only its SHA-256. A salted slow hash (as
 * for MQTT passwords, which people choose) is not needed here: 256 random bits cannot be
 * guessed from their hash, and a plain SHA-256 keeps checking a token cheap on every request.
 * Creating and revoking are journaled, without the secret.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Journal } from '../journal/journal.js';
import { withArticle } from '../words.js';

export const ROLES = ['affiliate', 'custodian', 'maintainer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface TokenInfo {
  id: string;
  role: Role;
  affiliateId: string | null;
  name: string | null;
  createdAt: string;
  revokedAt: string | null;
}

export class TokenError extends Error {}

const PREFIX = 'ovn_';
const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

/** Makes a token; the returned `token` is the only copy of the secret. */
export function createToken(journal: Journal, opts: { role: Role; affiliateId?: string | null; name?: string | null }): { id: string; token: string } {
  if (!ROLES.includes(opts.role)) throw new TokenError(`unknown role "${String(opts.role)}" (one of ${ROLES.join(', ')})`);
  const affiliateId = opts.affiliateId ?? null;
  if (opts.role === 'affiliate' && !affiliateId) throw new TokenError('an affiliate token needs the affiliate it belongs to (--affiliate <id>)');
  if (opts.role !== 'affiliate' && affiliateId) throw new TokenError(`only affiliate tokens belong to an affiliate; ${withArticle(opts.role)} token sees everyone's data`);
  const id = randomBytes(6).toString('hex');
  const token = PREFIX + randomBytes(32).toString('base64url');
  const name = opts.name ?? null;
  journal.db.transaction(() => {
    journal.db.prepare('INSERT INTO api_tokens (id, hash, role, affiliate_id, name, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(id, hashOf(token), opts.role, affiliateId, name, new Date().toISOString());
    journal.record('api-token.created', null, { tokenId: id, role: opts.role, affiliateId, name });
  })();
  return { id, token };
}

export function listTokens(journal: Journal): TokenInfo[] {
  return journal.db.prepare('SELECT id, role, affiliate_id AS affiliateId, name, created_at AS createdAt, revoked_at AS revokedAt FROM api_tokens ORDER BY created_at, id').all() as TokenInfo[];
}

/** Revokes a token at once: the next request with it is refused. */
export function revokeToken(journal: Journal, id: string): void {
  journal.db.transaction(() => {
    const r = journal.db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(new Date().toISOString(), id);
    if (r.changes === 0) {
      const known = journal.db.prepare('SELECT 1 FROM api_tokens WHERE id = ?').get(id);
      throw new TokenError(known ? `token ${id} is already revoked` : `no token "${id}" (see tokens list)`);
    }
    journal.record('api-token.revoked', null, { tokenId: id });
  })();
}

/** Checks tokens against the journal database, one prepared lookup by hash. */
export class TokenCheck {
  private readonly byHash;

  constructor(journal: Journal) {
    this.byHash = journal.db.prepare('SELECT id, role, affiliate_id AS affiliateId, name, created_at AS createdAt, revoked_at AS revokedAt FROM api_tokens WHERE hash = ?');
  }

  /** The token's record when it is valid and not revoked, else null. */
  check(token: string): TokenInfo | null {
    if (!token.startsWith(PREFIX)) return null;
    const t = this.byHash.get(hashOf(token)) as TokenInfo | undefined;
    return t && t.revokedAt === null ? t : null;
  }
}

/**
 * For a demonstration: one token per role (the affiliate token bound to `affiliateId`), named
 * `demo-<role>`. They are renewed at every start (the previous ones revoked), since only a
 * token just made can be shown: the log then always carries working login links.
 */
export function renewDemoTokens(journal: Journal, affiliateId: string): { role: Role; token: string }[] {
  for (const t of listTokens(journal)) if (t.revokedAt === null && t.name === `demo-${t.role}`) revokeToken(journal, t.id);
  return ROLES.map((role) => ({ role, token: createToken(journal, { role, affiliateId: role === 'affiliate' ? affiliateId : null, name: `demo-${role}` }).token }));
}
