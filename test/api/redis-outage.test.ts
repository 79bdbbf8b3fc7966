/**
 * The API while Redis holds its connections open but does not answer (frozen, or cut off by a
 * partition): every request still gets an answer, a 503 for what needs Redis, and a scrape of
 * /metrics stays within Prometheus' default 10 s timeout.
 */
import { afterEach, expect, it } from 'vitest';
import { generateToken, hashToken, TokenStore } from '../../src/api/auth/tokens.js';
import { type ApiBehindProxy, startApiBehindProxy } from '../support/api-behind-proxy.js';

let api: ApiBehindProxy | undefined;

afterEach(async () => {
  await api?.close();
  api = undefined;
});

/** The response, or 'no answer' after `ms`: a hang is a failed assertion, not a hung test. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'no answer'> {
  return Promise.race([promise, new Promise<'no answer'>((resolve) => setTimeout(resolve, ms, 'no answer'))]);
}

it('answers within seconds while Redis does not answer: 503 to a read, 504 to a write, 200 to /metrics', async () => {
  const token = generateToken();
  api = await startApiBehindProxy(
    new TokenStore([{ name: 'v', roles: ['viewer', 'submitter'], sha256: hashToken(token) }]),
  );
  const { harness, proxy, app } = api;
  const get = (url: string) =>
    app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
  expect((await get('/v1/changes')).statusCode).toBe(200);

  proxy.freeze();
  const list = await within(get('/v1/changes'), 8_000);
  expect(list === 'no answer' ? list : [list.statusCode, list.json().code]).toEqual([
    503,
    'SERVICE_UNAVAILABLE',
  ]);
  const metrics = await within(get('/metrics'), 8_000);
  expect(metrics === 'no answer' ? metrics : metrics.statusCode).toBe(200);
  const ready = await within(get('/readyz'), 8_000);
  expect(ready === 'no answer' ? ready : ready.statusCode).toBe(503);
  // A write may have reached Redis before its answer was lost: not "retry shortly".
  const server = harness.sim.servers[0]!;
  const submit = await within(
    app.inject({
      method: 'POST',
      url: '/v1/changes',
      headers: { authorization: `Bearer ${token}` },
      payload: {
        ipsecServerId: server.ipsecServerId,
        regionId: server.regionId,
        params: { IpsecServerName: 'x-1' },
      },
    }),
    8_000,
  );
  expect(
    submit === 'no answer' ? submit : [submit.statusCode, submit.json().code, submit.headers['retry-after']],
  ).toEqual([504, 'OUTCOME_UNKNOWN', undefined]);
});
