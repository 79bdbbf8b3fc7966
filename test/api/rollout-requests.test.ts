import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Api, PROBLEM_JSON, startApi } from './api-harness.js';

/**
 * What POST /v1/rollouts refuses before anything runs, on an app whose rollouts library has no
 * worker: a refused request must leave Redis exactly as it was.
 */

let api: Api;
beforeAll(async () => {
  api = await startApi({ workers: 0, rollouts: true });
});
afterAll(() => api?.close());

function createRollout(payload: unknown, headers: Record<string, string | string[]> = {}) {
  return api.call('submitter', { method: 'POST', url: '/v1/rollouts', headers, payload: payload as object });
}

describe('POST /v1/rollouts', () => {
  it('refuses an Idempotency-Key given twice (Node would join them) and writes nothing', async () => {
    const before = await api.keys();
    const response = await createRollout(
      { targets: [{ ...api.target(0), params: { IpsecServerName: 'given-twice' } }], planOnly: true },
      { 'idempotency-key': ['rollout-1', 'rollout-2'] },
    );
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(response.json().errors).toEqual([{ field: 'idempotency-key', rule: 'must be given once' }]);
    expect(await api.keys()).toEqual(before);
  });
});
