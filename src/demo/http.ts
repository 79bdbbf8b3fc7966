import { Agent, request } from 'undici';
import type { AuditEvent } from '../audit/event.js';
import type { ChangeView } from '../orchestrator/change.js';
import type { RolloutView, TargetPlan } from '../rollouts/rollout.js';
import type { RolloutSpecInput } from '../rollouts/rollout-spec.js';

/** An HTTP answer the demo did not expect, with the problem document when there is one. */
export class DemoHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${body.slice(0, 500)}`);
  }
}

/**
 * What the demo needs of the HTTP API (docs/api-contract.md) and of the simulator's control
 * routes, over one undici Agent that `close()` ends.
 */
export class DemoHttp {
  private readonly agent = new Agent({ connections: 16, headersTimeout: 10_000, bodyTimeout: 10_000 });

  constructor(
    readonly apiUrl: string,
    private readonly token: string,
    readonly simEndpoint: string,
  ) {}

  private async call(
    method: 'GET' | 'POST',
    url: string,
    what: string,
    options: {
      body?: unknown;
      headers?: Record<string, string>;
      auth?: boolean;
      /** Another identity's token (the rollout's approver). */
      token?: string;
      ok?: number[];
    } = {},
  ): Promise<{ status: number; json: unknown }> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (options.auth !== false) headers.authorization = `Bearer ${options.token ?? this.token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    const response = await request(url, { method, headers, body, dispatcher: this.agent });
    const text = await response.body.text();
    const ok = options.ok ?? [200, 201];
    if (!ok.includes(response.statusCode)) throw new DemoHttpError(response.statusCode, text, what);
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.statusCode, json };
  }

  async submitChange(
    submission: { ipsecServerId: string; regionId: string; params: Record<string, unknown>; note?: string },
    idempotencyKey: string,
  ): Promise<ChangeView> {
    const { json } = await this.call('POST', `${this.apiUrl}/v1/changes`, 'POST /v1/changes', {
      body: submission,
      headers: { 'idempotency-key': idempotencyKey },
    });
    return (json as { change: ChangeView }).change;
  }

  /** Every change under the API's prefix, following `nextCursor`. */
  async listChanges(): Promise<ChangeView[]> {
    const changes: ChangeView[] = [];
    let cursor: string | undefined;
    do {
      const query = new URLSearchParams({ limit: '500' });
      if (cursor) query.set('cursor', cursor);
      const { json } = await this.call('GET', `${this.apiUrl}/v1/changes?${query}`, 'GET /v1/changes');
      const page = json as { changes: ChangeView[]; nextCursor?: string };
      changes.push(...page.changes);
      cursor = page.nextCursor;
    } while (cursor);
    return changes;
  }

  async createRollout(spec: RolloutSpecInput, idempotencyKey: string): Promise<RolloutView> {
    const { json } = await this.call('POST', `${this.apiUrl}/v1/rollouts`, 'POST /v1/rollouts', {
      body: spec,
      headers: { 'idempotency-key': idempotencyKey },
    });
    return (json as { rollout: RolloutView }).rollout;
  }

  async rollout(id: string): Promise<{ rollout: RolloutView; plan: TargetPlan[] }> {
    const { json } = await this.call(
      'GET',
      `${this.apiUrl}/v1/rollouts/${encodeURIComponent(id)}`,
      'GET /v1/rollouts/:id',
    );
    return json as { rollout: RolloutView; plan: TargetPlan[] };
  }

  /** One approval, with the approver's own token (never the submitter's). */
  async approveRollout(id: string, approverToken: string): Promise<RolloutView> {
    const { json } = await this.call(
      'POST',
      `${this.apiUrl}/v1/rollouts/${encodeURIComponent(id)}/approve`,
      'POST /v1/rollouts/:id/approve',
      { token: approverToken },
    );
    return (json as { rollout: RolloutView }).rollout;
  }

  async changeTimeline(id: string): Promise<AuditEvent[]> {
    const { json } = await this.call(
      'GET',
      `${this.apiUrl}/v1/changes/${encodeURIComponent(id)}`,
      'GET /v1/changes/:id',
    );
    return (json as { timeline: AuditEvent[] }).timeline;
  }

  async audit(): Promise<AuditEvent[]> {
    const { json } = await this.call('GET', `${this.apiUrl}/v1/audit?limit=10000`, 'GET /v1/audit');
    return (json as { events: AuditEvent[] }).events;
  }

  /** GET /readyz: undefined when ready, else why not. */
  async notReady(): Promise<string | undefined> {
    try {
      const { status, json } = await this.call('GET', `${this.apiUrl}/readyz`, 'GET /readyz', {
        auth: false,
        ok: [200, 503],
      });
      return status === 200 ? undefined : JSON.stringify(json);
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }

  async setSimFaults(patch: Record<string, unknown>): Promise<void> {
    await this.call('POST', `${this.simEndpoint}/_sim/faults`, 'POST /_sim/faults', {
      body: patch,
      auth: false,
    });
  }

  async simServer(id: string): Promise<{
    config: { LocalSubnet: string; ClientIpPool: string };
    history: Array<{ clientToken?: string }>;
  }> {
    const { json } = await this.call(
      'GET',
      `${this.simEndpoint}/_sim/servers/${encodeURIComponent(id)}`,
      'GET /_sim/servers/:id',
      { auth: false },
    );
    return json as Awaited<ReturnType<DemoHttp['simServer']>>;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
