import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, REDACTED } from '../../src/log.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(chunk.toString());
      callback();
    },
  });
  return { lines, stream };
}

describe('log redaction', () => {
  it('never writes a secret, at any depth it is logged', async () => {
    const { lines, stream } = capture();
    const logger = createLogger({ level: 'info' }, stream);
    logger.info(
      {
        Psk: 'top-psk',
        change: { params: { Psk: 'nested-psk' } },
        credentials: { accessKeyId: 'AK', accessKeySecret: 'sk-1', securityToken: 'sts-1' },
        request: { headers: { authorization: 'ACS3 sig', 'x-acs-security-token': 'sts-2' } },
        token: 'api-token',
        body: { spec: { targets: [{ params: { Psk: 'rollout-target-psk' } }] } },
        deep: { a: { b: { c: { d: { Psk: 'five-deep-psk' } } } } },
        env: {
          ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'env-sk',
          IPSEC_FLEET_SECRET_KEY: 'env-seal',
          IPSEC_FLEET_TOKEN: 'env-tok',
        },
      },
      'call',
    );
    logger.flush();
    const out = lines.join('');
    for (const secret of [
      'top-psk',
      'nested-psk',
      'sk-1',
      'sts-1',
      'ACS3 sig',
      'sts-2',
      'api-token',
      'rollout-target-psk',
      'five-deep-psk',
      'env-sk',
      'env-seal',
      'env-tok',
    ]) {
      expect(out).not.toContain(secret);
    }
    expect(out).toContain(REDACTED);
    expect(out).toContain('"accessKeyId":"AK"');
  });

  it("never writes the arguments of a Redis command an error carries (a handshake's AUTH password)", () => {
    const { lines, stream } = capture();
    const logger = createLogger({ level: 'info' }, stream);
    // The shape ioredis gives a refused handshake's error.
    const refused = Object.assign(new Error('WRONGPASS invalid username-password pair'), {
      command: { name: 'hello', args: ['3', 'AUTH', 'default', 'redis-pw-1'] },
    });
    logger.error({ err: refused }, 'worker error');
    logger.error({ failure: { err: refused } }, 'nested');
    logger.flush();
    const out = lines.join('');
    expect(out).not.toContain('redis-pw-1');
    expect(out).toContain('"name":"hello"');
    expect(out).toContain('WRONGPASS');
  });
});
