import { describe, expect, it } from 'vitest';
import { completeConfigs } from '../../src/ipsec/complete-configs.js';
import { pskFingerprinter } from '../../src/ipsec/psk.js';
import { ipsecServerSchema, redactServer } from '../../src/ipsec/server.js';
import { mutableParamsSchema } from '../../src/ipsec/update-params.js';
import { toWireParams } from '../../src/ipsec/wire.js';

const server = ipsecServerSchema.parse({
  IpsecServerId: 'iss-1',
  LocalSubnet: '192.168.0.0/16',
  IkeConfig: {
    IkeVersion: 'ikev1',
    IkeMode: 'aggressive',
    IkeEncAlg: 'aes256',
    IkeAuthAlg: 'sha256',
    IkePfs: 'group14',
    IkeLifetime: 3600,
    LocalId: '116.64.0.1',
    RemoteId: '',
  },
  IpsecConfig: { IpsecEncAlg: 'aes', IpsecAuthAlg: 'sha1', IpsecPfs: 'disabled', IpsecLifetime: 86400 },
  Psk: 'clear-psk-1',
});

const params = (input: unknown) => mutableParamsSchema.parse(input);

describe('completeConfigs', () => {
  it("fills each config the params name with the server's other keys, and says which", () => {
    const { params: sent, filled } = completeConfigs(params({ IkeConfig: { IkeLifetime: 7200 } }), server);
    expect(sent.IkeConfig).toEqual({
      IkeVersion: 'ikev1',
      IkeMode: 'aggressive',
      IkeEncAlg: 'aes256',
      IkeAuthAlg: 'sha256',
      IkePfs: 'group14',
      IkeLifetime: 7200,
      LocalId: '116.64.0.1',
    });
    // An empty RemoteId is not sent: an empty identity breaks our own rule for it.
    expect(filled).toEqual([
      'IkeConfig.IkeVersion',
      'IkeConfig.IkeMode',
      'IkeConfig.IkeEncAlg',
      'IkeConfig.IkeAuthAlg',
      'IkeConfig.IkePfs',
      'IkeConfig.LocalId',
    ]);
    expect(sent.IpsecConfig).toBeUndefined();
  });

  it('leaves params without a config, and a value our rules refuse, as they are', () => {
    const subnet = params({ LocalSubnet: '10.1.0.0/24' });
    expect(completeConfigs(subnet, server)).toEqual({ params: subnet, filled: [], refused: [] });
    const odd = ipsecServerSchema.parse({
      ...server,
      IpsecConfig: { IpsecEncAlg: 'rot13', IpsecLifetime: 999_999 },
    });
    expect(completeConfigs(params({ IpsecConfig: { IpsecPfs: 'group2' } }), odd)).toEqual({
      params: params({ IpsecConfig: { IpsecPfs: 'group2' } }),
      filled: [],
      refused: ['IpsecConfig.IpsecEncAlg', 'IpsecConfig.IpsecLifetime'],
    });
  });

  it('sends the same wire parameters from the snapshot a retry reads back from Redis (invariant 4)', () => {
    const requested = params({ IkeConfig: { IkeLifetime: 7200 }, IpsecConfig: { IpsecPfs: 'group2' } });
    const snapshot = redactServer(server, pskFingerprinter(undefined));
    const reread = ipsecServerSchema.parse(JSON.parse(JSON.stringify(snapshot)));
    const wire = (from: typeof server) =>
      toWireParams({
        IpsecServerId: 'iss-1',
        RegionId: 'cn-hangzhou',
        ...completeConfigs(requested, from).params,
      });
    expect(wire(reread)).toEqual(wire(server));
    expect(wire(server).IkeConfig).toContain('"IkeVersion":"ikev1"');
  });
});
