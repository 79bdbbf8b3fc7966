import { z } from 'zod';
import type { ChangeView } from '../orchestrator/change.js';
import { ApiClient, type RequestOptions } from './api-client.js';

/** The change approval routes of the API (issue 6) on top of the change client. */

const changeEnvelopeSchema = z.looseObject({
  change: z.looseObject({ id: z.string(), state: z.string(), actor: z.string() }),
});

export class ChangeApprovalClient extends ApiClient {
  /** One approval of a change awaiting approval. */
  approveChange(id: string, options: RequestOptions = {}): Promise<ChangeView> {
    return this.decide(id, 'approve', undefined, options);
  }

  /** Rejects a change awaiting approval, with the reason. */
  rejectChange(id: string, reason: string, options: RequestOptions = {}): Promise<ChangeView> {
    return this.decide(id, 'reject', { reason }, options);
  }

  private async decide(
    id: string,
    action: 'approve' | 'reject',
    payload: Record<string, unknown> | undefined,
    options: RequestOptions,
  ): Promise<ChangeView> {
    const { body } = await this.json(
      {
        method: 'POST',
        path: `/v1/changes/${encodeURIComponent(id)}/${action}`,
        ...(payload
          ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) }
          : {}),
        accept: 'application/json',
      },
      changeEnvelopeSchema,
      options,
    );
    return body.change as unknown as ChangeView;
  }
}
