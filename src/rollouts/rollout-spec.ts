import { z } from 'zod';
import { rolloutInputSchema } from './rollout.js';

const { actor: _actor, rollbackOf: _rollbackOf, ...specShape } = rolloutInputSchema.shape;

/**
 * A rollout as a user writes it (a YAML/JSON file, the body of `POST /v1/rollouts`): the library's
 * input without `actor` (the token's name) and `rollbackOf` (set only by rollback). The library's
 * cross-field rules (params required somewhere, no target twice) are applied by running its own
 * schema, so both stay one set of rules.
 */
export const rolloutSpecSchema = z.strictObject(specShape).superRefine((spec, ctx) => {
  const result = rolloutInputSchema.safeParse({ ...spec, actor: 'spec' });
  if (result.success) return;
  for (const issue of result.error.issues) {
    if (issue.code === 'custom') ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  }
});

export type RolloutSpecInput = z.input<typeof rolloutSpecSchema>;
export type RolloutSpec = z.output<typeof rolloutSpecSchema>;
