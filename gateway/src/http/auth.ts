/**
 * Who is calling: the bearer token of each request, checked against the journal database,
 * and what its role may do. Wrong tokens from one address are counted; past a limit the
 * address's requests without a valid token are refused (429, Retry-After) until its window is
 * over, so a token cannot be guessed by trying. A valid token is never refused: people who share
 * an address (a lab's NAT, a reverse proxy) are not locked out by someone else's mistakes.
 */
import type { FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';
import type { Role, TokenCheck, TokenInfo } from './tokens.js';
import { withArticle } from '../words.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's token, set by the API's authentication; null on public routes called without one. */
    auth: TokenInfo | null;
  }
}

/** Wrong tokens allowed from one address per window. */
export const MAX_FAILURES = 10;
export const FAILURE_WINDOW_MS = 60_000;
/** Addresses remembered at most; the oldest are forgotten first (a flood of addresses cannot grow memory). */
const MAX_ADDRESSES = 10_000;

export class FailureLimit {
  private readonly byAddress = new Map<string, { count: number; since: number }>();

  constructor(
    private readonly max = MAX_FAILURES,
    private readonly windowMs = FAILURE_WINDOW_MS,
  ) {}

  /** Seconds until this address may try again, or null when it may now. */
  blockedFor(address: string, now: number): number | null {
    const f = this.byAddress.get(address);
    if (!f) return null;
    if (now - f.since >= this.windowMs) {
      this.byAddress.delete(address);
      return null;
    }
    return f.count >= this.max ? Math.ceil((f.since + this.windowMs - now) / 1000) : null;
  }

  fail(address: string, now: number): void {
    const f = this.byAddress.get(address);
    if (f && now - f.since < this.windowMs) f.count++;
    else {
      this.byAddress.delete(address);
      if (this.byAddress.size >= MAX_ADDRESSES) this.byAddress.delete(this.byAddress.keys().next().value!);
      this.byAddress.set(address, { count: 1, since: now });
    }
  }
}

function presented(req: FastifyRequest): string | null {
  const header = req.headers.authorization;
  if (header) return /^Bearer\s+(\S+)$/i.exec(header)?.[1] ?? '';
  // Slicers send the key of their print host as X-Api-Key (OctoPrint's header), or in the query.
  const key = req.headers['x-api-key'];
  if (typeof key === 'string') return key.trim();
  const query = req.query as Record<string, unknown> | undefined;
  if (req.url.startsWith('/octoprint/') && typeof query?.apikey === 'string') return query.apikey;
  // EventSource cannot set headers: the event stream also takes ?token=.
  return req.routeOptions.url === '/api/events' && typeof query?.token === 'string' ? query.token : null;
}

/**
 * Finds the caller's token. `required`: a request without one is refused (401); otherwise
 * it goes on as anonymous. A wrong token is always refused and counted.
 */
export function authenticate(tokens: TokenCheck, limit: FailureLimit, req: FastifyRequest, required: boolean): TokenInfo | null {
  const now = Date.now();
  const token = presented(req);
  const info = token ? tokens.check(token) : null;
  if (info) return info;
  // past the limit, what is not a valid token is refused unchecked
  const wait = limit.blockedFor(req.ip, now);
  if (wait !== null) throw new HttpError(429, 'too-many-requests', `too many wrong tokens from ${req.ip}; try again in ${wait} s`, { 'retry-after': String(wait) });
  if (token === null) {
    if (!required) return null;
    throw new HttpError(401, 'unauthorized', 'this needs an API token: send "Authorization: Bearer <token>" (make one with: ovn-gateway tokens create --role …)');
  }
  limit.fail(req.ip, now);
  throw new HttpError(
    401,
    'bad-token',
    token ? 'this API token is not valid: unknown, mistyped or revoked' : req.headers.authorization ? 'the Authorization header must be "Bearer <token>"' : 'the API key is empty: paste a gateway API token into the slicer\'s "API Key" field',
  );
}

/** Refuses (403) a caller whose role is not one of these. */
export function requireRole(req: FastifyRequest, roles: readonly Role[]): void {
  const role = req.auth?.role;
  if (role && roles.includes(role)) return;
  throw new HttpError(403, 'forbidden', `${withArticle(role ?? 'caller without a token')} may not ${req.method} ${req.routeOptions.url}; it needs ${roles.map(withArticle).join(' or ')} token`);
}

/** A route only these roles may call (a preHandler). */
export const allow =
  (...roles: Role[]) =>
  async (req: FastifyRequest): Promise<void> =>
    requireRole(req, roles);

/** The affiliate an affiliate token is bound to; null for the other roles, which see everyone's data. */
export const ownAffiliate = (req: FastifyRequest): string | null => (req.auth?.role === 'affiliate' ? req.auth.affiliateId : null);

/** Who did it, for the journal's `by`: the token's name, else its affiliate or its role; never what the request says (the token's id is journaled with the action, app.ts). */
export const actor = (req: FastifyRequest): string => req.auth?.name ?? req.auth?.affiliateId ?? req.auth?.role ?? 'api';
