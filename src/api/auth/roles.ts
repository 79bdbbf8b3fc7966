import { z } from 'zod';

/**
 * The roles a token may hold. `viewer` reads everything; `submitter` and `approver` add their
 * writes to it; `admin` may do anything. A route names the one role it needs, and a token passes
 * when one of its roles grants it.
 */
export const ROLES = ['viewer', 'submitter', 'approver', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const roleSchema = z.enum(ROLES, {
  error: (issue) => `must be one of ${ROLES.join(', ')} (got ${JSON.stringify(issue.input)})`,
});

/** What holding a role also grants (besides the role itself). */
const IMPLIES: Readonly<Record<Role, readonly Role[]>> = {
  viewer: [],
  submitter: ['viewer'],
  approver: ['viewer'],
  admin: ['viewer', 'submitter', 'approver'],
};

export function grants(held: readonly Role[], required: Role): boolean {
  return held.some((role) => role === required || IMPLIES[role].includes(required));
}
