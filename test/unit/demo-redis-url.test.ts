import { describe, expect, it } from 'vitest';
import { displayRedisUrl } from '../../src/demo/redis.js';

describe('displayRedisUrl', () => {
  it.each([
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['redis://:S3cret-Pw@redis.internal:6380/2', 'redis://redis.internal:6380/2'],
    ['rediss://alice:S3cret-Pw@redis.internal/0', 'rediss://redis.internal/0'],
    ['redis://redis.internal:6379/1?password=S3cret-Pw', 'redis://redis.internal:6379/1'],
    [
      'redis://redis.internal:6379?username=alice&password=S3cret-Pw#S3cret-Pw',
      'redis://redis.internal:6379',
    ],
    ['redis://[::1]:6379/3', 'redis://[::1]:6379/3'],
  ])('%s prints as %s', (url, shown) => {
    expect(displayRedisUrl(url)).toBe(shown);
  });

  it('prints nothing of a value that is not a URL', () => {
    expect(displayRedisUrl('S3cret-Pw@nowhere')).not.toContain('S3cret-Pw');
  });
});
