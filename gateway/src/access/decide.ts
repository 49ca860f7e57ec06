/**
 * May this badge switch this tool on? Pure: the allow-list, the tool's state and a clock
 * reading in, a decision with a named reason out. Nothing here touches the network, so the
 * gateway decides with no network at all.
 */

export type AffiliateStatus = 'active' | 'suspended';
export type ToolStatus = 'available' | 'in-use' | 'blocked' | 'maintenance';

export interface Affiliate {
  id: string;
  name: string;
  status: AffiliateStatus;
  /** Badge UIDs, uppercase hex. */
  badges: readonly string[];
  /** Default use type of their sessions; null: the lab's default. */
  useType?: string | null;
  /** Where their notifications by e-mail go; absent: none. */
  email?: string;
}

export interface Qualification {
  affiliateId: string;
  toolId: string;
  /** ISO 8601; null: does not expire. */
  expiresAt: string | null;
}

export interface ToolView {
  id: string;
  /** blocked or maintenance as set by a maintainer (a running session goes on); else in-use or available. */
  status: ToolStatus;
  /** The affiliate whose session is open, when in use. */
  sessionAffiliateId: string | null;
  /** Whether another qualified affiliate may take over a running session by badging. */
  handover: boolean;
  /** Affiliates whose badge during someone else's session counts technician time instead. */
  technicians?: readonly string[];
}

export interface AccessData {
  affiliates: readonly Affiliate[];
  qualifications: readonly Qualification[];
}

export type DenyReason =
  | 'unknown-badge'
  | 'suspended'
  | 'not-qualified'
  | 'qualification-expired'
  | 'tool-blocked'
  | 'tool-in-maintenance'
  | 'in-use-by-other'
  /** The journal's storage cannot record a new session (disk full, read-only). */
  | 'storage-unavailable';

export type Decision =
  | { kind: 'grant'; affiliateId: string }
  /** The affiliate of the open session badged again. */
  | { kind: 'badge-out'; affiliateId: string }
  /** Another qualified affiliate takes over the running session. */
  | { kind: 'handover'; from: string; to: string }
  /** A technician badges during someone else's session: their help starts (or, the second time, stops). */
  | { kind: 'technician'; affiliateId: string }
  | { kind: 'deny'; reason: DenyReason; affiliateId: string | null };

/** Normalises a badge UID as readers print it (spaces, colons, lower case) to uppercase hex. */
export function normaliseUid(uid: string): string {
  return uid.replace(/[\s:-]/g, '').toUpperCase();
}

export function decideAccess(badgeUid: string, tool: ToolView, data: AccessData, now: Date): Decision {
  const uid = normaliseUid(badgeUid);
  const affiliate = data.affiliates.find((a) => a.badges.some((b) => normaliseUid(b) === uid));
  if (!affiliate) return { kind: 'deny', reason: 'unknown-badge', affiliateId: null };
  const deny = (reason: DenyReason): Decision => ({ kind: 'deny', reason, affiliateId: affiliate.id });

  // Ending one's own session is always allowed: a suspension or an expiry must not keep a tool running.
  if (tool.sessionAffiliateId === affiliate.id) return { kind: 'badge-out', affiliateId: affiliate.id };
  if (affiliate.status === 'suspended') return deny('suspended');
  if (tool.sessionAffiliateId !== null && tool.technicians?.includes(affiliate.id)) return { kind: 'technician', affiliateId: affiliate.id };
  if (tool.status === 'blocked') return deny('tool-blocked');
  if (tool.status === 'maintenance') return deny('tool-in-maintenance');

  const qualifications = data.qualifications.filter((q) => q.affiliateId === affiliate.id && q.toolId === tool.id);
  if (qualifications.length === 0) return deny('not-qualified');
  if (!qualifications.some((q) => q.expiresAt === null || Date.parse(q.expiresAt) > now.getTime())) return deny('qualification-expired');

  if (tool.sessionAffiliateId !== null) {
    if (!tool.handover) return deny('in-use-by-other');
    return { kind: 'handover', from: tool.sessionAffiliateId, to: affiliate.id };
  }
  return { kind: 'grant', affiliateId: affiliate.id };
}
