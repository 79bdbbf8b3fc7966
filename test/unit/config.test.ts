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
