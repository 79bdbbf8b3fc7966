import type { SimAccessKey } from '../auth.js';
import type { SimError } from '../errors.js';
import type { FaultDraw } from '../faults.js';
import type { SimState } from '../state.js';

/** What an action sees of one authenticated call. */
export interface ActionContext {
  state: SimState;
  key: SimAccessKey;
  /** Business parameters as received (strings), envelope removed. */
  params: Record<string, string>;
  requestId: string;
  now: number;
  draw: FaultDraw;
}

/**
 * A success to answer with HTTP 200. `requestId` is the call's own, except for an idempotent
 * replay, which answers with the first call's. Errors are thrown as SimError, except the one an
 * action reaches as its ordinary outcome (a passed dry run), which it returns: an answer, not a
 * fault, and throwing costs V8 a walk of the stack to record where.
 */
export interface ActionResult {
  requestId: string;
  body: Record<string, unknown>;
  /** JSON.stringify(body), byte for byte, when the action has it at hand for less. */
  json?: string;
}

export type ActionHandler = (context: ActionContext) => ActionResult | SimError;
