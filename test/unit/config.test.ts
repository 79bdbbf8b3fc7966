import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('applies defaults when nothing is set', () => {
    const config = loadConfig({});
    expect(config.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(config.IPSEC_FLEET_PREFIX).toBe('ipf');
    expect(config.IPSEC_FLEET_HTTP_TIMEOUT_MS).toBe(10_000);
  });

  it('coerces numbers from strings and treats empty values as unset', () => {
    const config = loadConfig({ IPSEC_FLEET_HTTP_CONNECTIONS: '4', IPSEC_FLEET_PREFIX: '' });
    expect(config.IPSEC_FLEET_HTTP_CONNECTIONS).toBe(4);
    expect(config.IPSEC_FLEET_PREFIX).toBe('ipf');
  });

  it('lists every bad variable in one error', () => {
    let caught: unknown;
    try {
      loadConfig({ REDIS_URL: 'http://x', LOG_LEVEL: 'loud', IPSEC_FLEET_HTTP_TIMEOUT_MS: '-5' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.issues.map((issue) => issue.field).sort()).toEqual([
      'IPSEC_FLEET_HTTP_TIMEOUT_MS',
      'LOG_LEVEL',
      'REDIS_URL',
    ]);
    expect(error.message).toContain('REDIS_URL: must be a redis:// or rediss:// URL');
  });

  it('ignores variables it does not own', () => {
    expect(() => loadConfig({ PATH: '/bin', HOME: '/root' })).not.toThrow();
  });
});

/** The issues loadConfig reports for `env`, as `FIELD: rule` lines (none when it passes). */
function issuesOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues.map((issue) => `${issue.field}: ${issue.rule}`);
  }
}

describe('loadConfig rules', () => {
  it('takes numbers as digits only: a blank port is not port 0, 1e3 is not 1000', () => {
    for (const value of [' ', '1e3', '0x10', '-1', '8080.5']) {
      expect(issuesOf({ IPSEC_FLEET_PORT: value, IPSEC_FLEET_HTTP_TIMEOUT_MS: value })).toEqual([
        'IPSEC_FLEET_HTTP_TIMEOUT_MS: must be a whole number (digits only)',
        'IPSEC_FLEET_PORT: must be a whole number (digits only)',
      ]);
    }
    expect(issuesOf({ IPSEC_FLEET_PORT: '65536' })).toEqual([
      'IPSEC_FLEET_PORT: must be a port number from 0 to 65535',
    ]);
    expect(issuesOf({ IPSEC_FLEET_HTTP_CONNECTIONS: '0' })).toEqual([
      'IPSEC_FLEET_HTTP_CONNECTIONS: must be positive',
    ]);
    expect(loadConfig({ IPSEC_FLEET_PORT: '0', IPSEC_FLEET_WORKER_CONCURRENCY: '7' })).toMatchObject({
      IPSEC_FLEET_PORT: 0,
      IPSEC_FLEET_WORKER_CONCURRENCY: 7,
    });
  });

  it('caps IPSEC_FLEET_WORKER_CONCURRENCY as worker --concurrency is', () => {
    expect(issuesOf({ IPSEC_FLEET_WORKER_CONCURRENCY: '1000' })).toEqual([]);
    expect(issuesOf({ IPSEC_FLEET_WORKER_CONCURRENCY: '1001' })).toEqual([
      'IPSEC_FLEET_WORKER_CONCURRENCY: must be at most 1000',
    ]);
  });

  it('caps IPSEC_FLEET_HTTP_CONNECTIONS at what one pool should hold open to one endpoint', () => {
    expect(issuesOf({ IPSEC_FLEET_HTTP_CONNECTIONS: '1024' })).toEqual([]);
    expect(issuesOf({ IPSEC_FLEET_HTTP_CONNECTIONS: '1000000' })).toEqual([
      'IPSEC_FLEET_HTTP_CONNECTIONS: must be at most 1024',
    ]);
  });

  it('takes a Redis db number in REDIS_URL, and nothing else in its path', () => {
    for (const url of ['redis://127.0.0.1:6390', 'redis://127.0.0.1:6390/', 'rediss://h:6390/15']) {
      expect(issuesOf({ REDIS_URL: url }), url).toEqual([]);
    }
    for (const url of ['redis://127.0.0.1:6390/abc', 'redis://h/1/2', 'redis://h/-1', 'redis://h/1x']) {
      const [issue, ...rest] = issuesOf({ REDIS_URL: url });
      expect(rest, url).toEqual([]);
      expect(issue, url).toMatch(/^REDIS_URL: .*path must be empty or \/<db number>/);
    }
    expect(issuesOf({ REDIS_URL: 'not a url' })).toEqual(['REDIS_URL: must be a redis:// or rediss:// URL']);
  });

  it('caps millisecond settings at the longest timer Node.js honours', () => {
    expect(loadConfig({ IPSEC_FLEET_HTTP_TIMEOUT_MS: '2147483647' }).IPSEC_FLEET_HTTP_TIMEOUT_MS).toBe(
      2_147_483_647,
    );
    expect(issuesOf({ IPSEC_FLEET_HTTP_TIMEOUT_MS: '2147483648' })).toEqual([
      'IPSEC_FLEET_HTTP_TIMEOUT_MS: must be at most 2147483647 (the longest timer Node.js honours)',
    ]);
  });

  it('checks IPSEC_FLEET_POLICY against the policy schema, naming the field inside it', () => {
    expect(issuesOf({ IPSEC_FLEET_POLICY: '{"busy":{"baseMs":10,"maxMs":20}}' })).toEqual([]);
    const [busy] = issuesOf({ IPSEC_FLEET_POLICY: '{"busy":1}' });
    expect(busy).toMatch(/^IPSEC_FLEET_POLICY\.busy: /);
    expect(issuesOf({ IPSEC_FLEET_POLICY: '{"verifyIntervalMs":99999999999,"nope":1}' })).toEqual([
      'IPSEC_FLEET_POLICY.verifyIntervalMs: must be at most 2147483647 (the longest timer Node.js honours)',
      'IPSEC_FLEET_POLICY.nope: unknown field',
    ]);
    expect(issuesOf({ IPSEC_FLEET_POLICY: '[1]' })).toEqual([
      'IPSEC_FLEET_POLICY: must be a JSON object, e.g. {"busy":{"baseMs":2000,"maxMs":60000}}',
    ]);
  });

  it("states IPSEC_FLEET_POLICY's rules in words, never in zod's", () => {
    const issues = issuesOf({
      IPSEC_FLEET_POLICY: JSON.stringify({
        busy: { baseMs: -1, maxMs: 10, maxAttempts: 0 },
        verifyIntervalMs: 1e20,
        idempotencyRetentionMs: 1e20,
        apiQps: 'fast',
        approval: { when: 'Psk', required: 17 },
      }),
    });
    expect(issues).toEqual([
      'IPSEC_FLEET_POLICY.busy.baseMs: must not be negative',
      'IPSEC_FLEET_POLICY.busy.maxAttempts: must be positive',
      'IPSEC_FLEET_POLICY.verifyIntervalMs: must be at most 2147483647 (the longest timer Node.js honours)',
      'IPSEC_FLEET_POLICY.idempotencyRetentionMs: must be at most 9007199254740991',
      'IPSEC_FLEET_POLICY.apiQps: must be a number',
      'IPSEC_FLEET_POLICY.approval.when: must be a list',
      'IPSEC_FLEET_POLICY.approval.required: must be at most 16',
    ]);
    expect(issues.join('; ')).not.toMatch(/Too (?:small|big)|Invalid input|expected|received|[<>]=/);
  });

  it("states the variables' rules in words, never in zod's", () => {
    expect(issuesOf({ LOG_LEVEL: 'loud' })).toEqual([
      'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent',
    ]);
  });

  it('takes an IP address or a host name in IPSEC_FLEET_HOST', () => {
    for (const host of ['127.0.0.1', '0.0.0.0', '::', '::1', 'localhost', 'api-1.example.com']) {
      expect(issuesOf({ IPSEC_FLEET_HOST: host }), host).toEqual([]);
    }
    for (const host of ['999.1.1.1', '1.2.3', 'a b', '-x.example', 'http://x', '[::1]', 'x..y']) {
      expect(issuesOf({ IPSEC_FLEET_HOST: host }), host).toEqual([
        'IPSEC_FLEET_HOST: must be an IP address or a host name, e.g. 127.0.0.1, :: or localhost',
      ]);
    }
  });
});
