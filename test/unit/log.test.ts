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
});
