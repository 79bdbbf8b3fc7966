import { z } from 'zod';

/**
 * The paging fields every listing takes, one rule for changes and rollouts alike: an opaque
 * cursor from the previous page (score and id), and a page size.
 */
export const pageQueryShape = {
  /** Opaque cursor from the previous page. */
  cursor: z
    .string()
    .regex(/^\d+:[\w-]+$/, 'must be a cursor returned by a previous page')
    .optional(),
  limit: z
    .number()
    .int('must be from 1 to 500')
    .min(1, 'must be from 1 to 500')
    .max(500, 'must be from 1 to 500')
    .default(50),
};
