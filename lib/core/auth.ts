/**
 * Who may do what. API keys carry roles; routes require permissions; this table joins them.
 * Pure data and functions, so the matrix is tested without a server.
 */

export const ROLES = ['admin', 'operator', 'producer', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = [
  /** Apply workflow definitions. */
  'workflows:write',
  /** Read workflow definitions and the schema. */
  'workflows:read',
  /** Start cases. */
  'cases:start',
  /** Read every case. */
  'cases:read',
  /** Read the cases this key started. */
  'cases:read-own',
  /** Cancel, retry and signal cases. */
  'cases:operate',
  /** Read metrics and fleet status. */
  'fleet:read',
  /** Create, list and revoke API keys. */
  'keys:manage',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const GRANTS: Record<Role, readonly Permission[]> = {
  admin: PERMISSIONS,
  operator: ['workflows:read', 'cases:read', 'cases:read-own', 'cases:operate', 'fleet:read'],
  producer: ['workflows:read', 'cases:start', 'cases:read-own'],
  viewer: ['workflows:read', 'cases:read', 'cases:read-own', 'fleet:read'],
};

export function permissionsOf(roles: readonly Role[]): Set<Permission> {
  return new Set(roles.flatMap((role) => GRANTS[role]));
}

export function can(roles: readonly Role[], permission: Permission): boolean {
  return permissionsOf(roles).has(permission);
}

/** The identity behind a request: a key, or nobody when auth is off (development only). */
export interface Principal {
  /** The key id, or "anonymous" when auth is off. */
  id: string;
  name: string;
  roles: readonly Role[];
}

export const ANONYMOUS: Principal = { id: 'anonymous', name: 'auth disabled', roles: ['admin'] };

/** Whether a principal may read a case started by `startedBy`. */
export function mayReadCase(principal: Principal, startedBy: string | undefined): boolean {
  if (can(principal.roles, 'cases:read')) return true;
  return can(principal.roles, 'cases:read-own') && startedBy === principal.id;
}

/** The readable part of a key: `wfk_<id>_<secret>`; the id finds the stored hash, the secret proves possession. */
const KEY_PATTERN = /^wfk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

export function parseKey(presented: string): { id: string; secret: string } | undefined {
  const match = KEY_PATTERN.exec(presented);
  return match?.[1] && match[2] ? { id: match[1], secret: match[2] } : undefined;
}
