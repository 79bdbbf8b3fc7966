import { type ApiApp, buildApp } from '../../src/api/app.js';
import type { TokenStore } from '../../src/api/auth/tokens.js';
import { Orchestrator } from '../../src/orchestrator/orchestrator.js';
import { Rollouts } from '../../src/rollouts/rollouts.js';
import { type Harness, startHarness, TEST_SECRET_KEY } from './orchestrator-harness.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

export interface ApiBehindProxy {
  harness: Harness;
  /** Between the app and Redis: freeze() stops Redis answering this app and no other client. */
  proxy: TcpProxy;
  orchestrator: Orchestrator;
  rollouts: Rollouts | undefined;
  app: ApiApp;
  close(): Promise<void>;
}

/** The API (with rollouts when asked) reaching the test Redis through a proxy of its own. */
export async function startApiBehindProxy(
  tokens: TokenStore,
  options: { rollouts?: boolean } = {},
): Promise<ApiBehindProxy> {
  const harness = await startHarness({ workers: 0 });
  const proxy = await startTcpProxy(harness.redisUrl);
  const orchestrator = Orchestrator.connect({
    redisUrl: proxy.url,
    prefix: harness.prefix,
    secretKey: TEST_SECRET_KEY,
  });
  const rollouts = options.rollouts ? Rollouts.for(orchestrator) : undefined;
  const app = buildApp({ orchestrator, rollouts, tokens });
  await app.ready();
  return {
    harness,
    proxy,
    orchestrator,
    rollouts,
    app,
    async close() {
      proxy.heal();
      await app.close();
      await rollouts?.close();
      await orchestrator.close();
      await proxy.close();
      await harness.close();
    },
  };
}
