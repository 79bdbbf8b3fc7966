import type { TestProject } from 'vitest/node';
import { type PrivateRedis, startPrivateRedis } from '../../src/redis/private-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let privateRedis: PrivateRedis | undefined;

/**
 * Tests talk to a real Redis. With REDIS_URL set they use it (and only ever touch keys under
 * their own unique prefixes); otherwise they get a private redis-server on a free port.
 */
export async function setup(project: TestProject): Promise<void> {
  let url = process.env.REDIS_URL;
  if (!url) {
    privateRedis = await startPrivateRedis();
    url = privateRedis.url;
  }
  project.provide('redisUrl', url);
}

export async function teardown(): Promise<void> {
  await privateRedis?.stop();
}
