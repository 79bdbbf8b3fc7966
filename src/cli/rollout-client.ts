import { z } from 'zod';
import { type AuditEvent, auditEventSchema } from '../audit/event.js';
import type { RolloutView, TargetPlan } from '../rollouts/rollout.js';
import type { RolloutSpecInput } from '../rollouts/rollout-spec.js';
import { ApiClient, parseServerSentEvents, type RequestOptions } from './api-client.js';

/** The rollout routes of the API (issue 6) on top of the change client. */

const rolloutSchema = z.looseObject({
  id: z.string(),
  state: z.string(),
  actor: z.string(),
  targetCount: z.number(),
  progress: z.looseObject({
    total: z.number(),
    submitted: z.number(),
    inFlight: z.number(),
    succeeded: z.number(),
    errors: z.number(),
    byState: z.record(z.string(), z.number()),
    percent: z.number(),
  }),
  createdAt: z.number(),
  updatedAt: z.number(),
});
const envelopeSchema = z.looseObject({ rollout: rolloutSchema });
const detailSchema = z.looseObject({
  rollout: rolloutSchema,
  plan: z.array(z.looseObject({ index: z.number() })),
});

export interface RolloutDetail {
  rollout: RolloutView;
  plan: TargetPlan[];
}

/** A `progress` frame of the event stream. */
export type RolloutProgressFrame = Pick<
  RolloutView,
  'id' | 'state' | 'reason' | 'plan' | 'progress' | 'createdAt' | 'updatedAt' | 'finishedAt'
>;

export type RolloutStreamItem =
  | { kind: 'audit'; event: AuditEvent }
  | { kind: 'progress'; frame: RolloutProgressFrame };

export type RolloutAction = 'approve' | 'reject' | 'pause' | 'resume' | 'cancel' | 'rollback';

export class RolloutClient extends ApiClient {
  async createRollout(spec: RolloutSpecInput, options: RequestOptions = {}): Promise<RolloutView> {
    const { body } = await this.json(
      {
        method: 'POST',
        path: '/v1/rollouts',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(spec),
        accept: 'application/json',
      },
      envelopeSchema,
      options,
    );
    return body.rollout as unknown as RolloutView;
  }

  async getRollout(id: string, options: RequestOptions = {}): Promise<RolloutDetail> {
    const { body } = await this.json(
      { method: 'GET', path: `/v1/rollouts/${encodeURIComponent(id)}`, accept: 'application/json' },
      detailSchema,
      options,
    );
    return body as unknown as RolloutDetail;
  }

  async rolloutAction(
    id: string,
    action: RolloutAction,
    payload?: Record<string, unknown>,
    options: RequestOptions = {},
  ): Promise<RolloutView> {
    const { body } = await this.json(
      {
        method: 'POST',
        path: `/v1/rollouts/${encodeURIComponent(id)}/${action}`,
        ...(payload
          ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) }
          : {}),
        accept: 'application/json',
      },
      envelopeSchema,
      options,
    );
    return body.rollout as unknown as RolloutView;
  }

  /** The rollout's event stream until the server ends it (a terminal state). */
  async *rolloutEvents(id: string, options: RequestOptions = {}): AsyncGenerator<RolloutStreamItem> {
    const body = await this.openStream(
      { method: 'GET', path: `/v1/rollouts/${encodeURIComponent(id)}/events`, accept: 'text/event-stream' },
      options,
    );
    for await (const message of this.readStream(body, options.signal, parseServerSentEvents)) {
      if (message.event === 'audit') {
        yield { kind: 'audit', event: auditEventSchema.parse(JSON.parse(message.data)) };
      } else if (message.event === 'progress') {
        yield { kind: 'progress', frame: JSON.parse(message.data) as RolloutProgressFrame };
      }
    }
  }
}
