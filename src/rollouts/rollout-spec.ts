import { z } from 'zod';
import { checkCrossFieldRules, rolloutInputSchema } from './rollout.js';

const { actor: _actor, rollbackOf: _rollbackOf, ...specShape } = rolloutInputSchema.shape;

/**
 * A rollout as a user writes it (a YAML/JSON file, the body of `POST /v1/rollouts`): the library's
 * input without `actor` (the token's name) and `rollbackOf` (set only by rollback). Its fields and
 * its cross-field rules (params required somewhere, no target twice) are the library's own, so
 * both stay one set of rules; a spec that passes here is checked no further (Rollouts.createParsed).
 */
export const rolloutSpecSchema = z.strictObject(specShape).superRefine(checkCrossFieldRules);

export type RolloutSpecInput = z.input<typeof rolloutSpecSchema>;
export type RolloutSpec = z.output<typeof rolloutSpecSchema>;
