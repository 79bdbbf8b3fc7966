import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { startPrivateRedis } from '../../src/redis/private-server.js';

describe('startPrivateRedis', () => {
  it('starts a redis-server with noeviction and recovers AOF writes after a kill', async () => {
    const first = await startPrivateRedis({ appendOnly: true });
    const client = new Redis(first.url);
    expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    await client.set('survives', 'yes');
    client.disconnect();
    await first.kill();

    const second = await startPrivateRedis({ appendOnly: true, dir: first.dir, port: first.port });
    const again = new Redis(second.url);
    expect(await again.get('survives')).toBe('yes');
    again.disconnect();
    await second.stop();
    await first.stop();
  });

  it('names redis-server when it cannot be found', async () => {
    await expect(startPrivateRedis({ executable: 'no-such-redis-server' })).rejects.toMatchObject({
      code: 'REDIS_SERVER_START_FAILED',
      message: expect.stringContaining('redis-server is not on PATH'),
    });
  });
});
