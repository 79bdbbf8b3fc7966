import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { diffConfig, isSatisfiedBy } from '../../src/ipsec/diff.js';
import { PSK_FINGERPRINT_PATTERN, pskFingerprinter } from '../../src/ipsec/psk.js';
import { ipsecServerSchema } from '../../src/ipsec/server.js';
import { mutableParamsSchema, updateIpsecServerParamsSchema } from '../../src/ipsec/update-params.js';

const server = ipsecServerSchema.parse({
  IpsecServerId: 'iss-1',
  IpsecServerName: 'office',
  RegionId: 'cn-shanghai',
  LocalSubnet: '192.168.0.0/16,172.17.0.0/16',
  ClientIpPool: '10.0.0.0/24',
  EffectImmediately: false,
  IkeConfig: {
    IkeVersion: 'ikev2',
    IkeMode: 'main',
    IkeEncAlg: 'aes',
    IkeAuthAlg: 'sha1',
    IkePfs: 'group2',
    IkeLifetime: 86400,
  },
  IpsecConfig: { IpsecEncAlg: 'aes', IpsecAuthAlg: 'sha1', IpsecPfs: 'group2', IpsecLifetime: 86400 },
  PskEnabled: true,
  Psk: 'old-key',
});

const params = (input: unknown) => mutableParamsSchema.parse(input);

const fingerprint = pskFingerprinter(Buffer.alloc(32, 7));

describe('pskFingerprinter', () => {
  it('labels a key hmac:<16 hex>, the same for the same secret, never the key itself', () => {
    expect(fingerprint('old-key')).toMatch(PSK_FINGERPRINT_PATTERN);
    expect(pskFingerprinter(Buffer.alloc(32, 7))('old-key')).toBe(fingerprint('old-key'));
    expect(fingerprint('old-key')).not.toBe(fingerprint('old-kez'));
    expect(fingerprint('old-key')).not.toContain('old-key');
  });

  it("cannot be checked against a guess without the deployment's secret", () => {
    // A plain hash of the key, or an HMAC under another secret, gives another label.
    const plainHash = createHash('sha256').update('old-key').digest('hex');
    expect(fingerprint('old-key')).not.toContain(plainHash.slice(0, 16));
    expect(pskFingerprinter(Buffer.alloc(32, 8))('old-key')).not.toBe(fingerprint('old-key'));
    // Without a secret, each process keys its own labels.
    expect(pskFingerprinter(undefined)('old-key')).not.toBe(pskFingerprinter(undefined)('old-key'));
  });
});

describe('diffConfig', () => {
  it('lists only the fields that would change, IkeConfig/IpsecConfig field by field', () => {
    const changes = diffConfig(
      server,
      params({
        LocalSubnet: '192.168.0.0/16,10.0.0.0/8',
        ClientIpPool: '10.0.0.0/24',
        IpsecServerName: 'office-2',
        EffectImmediately: true,
        IkeConfig: { IkeVersion: 'ikev2', IkeLifetime: 3600, RemoteId: 'peer.example.com' },
        IpsecConfig: '{"IpsecPfs":"disabled","IpsecEncAlg":"aes"}',
        PskEnabled: true,
      }),
      fingerprint,
    );
    expect(changes).toEqual([
      { field: 'LocalSubnet', from: '192.168.0.0/16,172.17.0.0/16', to: '192.168.0.0/16,10.0.0.0/8' },
      { field: 'IpsecServerName', from: 'office', to: 'office-2' },
      { field: 'EffectImmediately', from: false, to: true },
      { field: 'IkeConfig.IkeLifetime', from: 86400, to: 3600 },
      { field: 'IkeConfig.RemoteId', from: undefined, to: 'peer.example.com' },
      { field: 'IpsecConfig.IpsecPfs', from: 'group2', to: 'disabled' },
    ]);
  });

  it('shows a Psk change only as fingerprints', () => {
    const changes = diffConfig(server, params({ Psk: 'new-key' }), fingerprint);
    expect(changes).toEqual([{ field: 'Psk', from: fingerprint('old-key'), to: fingerprint('new-key') }]);
    expect(JSON.stringify(changes)).not.toMatch(/old-key|new-key/);
  });

  it('counts a Psk the server does not report as a change', () => {
    const { Psk: _omitted, ...withoutPsk } = server;
    expect(diffConfig(withoutPsk, params({ Psk: 'old-key' }), fingerprint)).toEqual([
      { field: 'Psk', from: undefined, to: fingerprint('old-key') },
    ]);
  });

  it('treats LocalSubnet as a set: same blocks in another order are no change', () => {
    expect(diffConfig(server, params({ LocalSubnet: '172.17.0.0/16, 192.168.0.0/16' }), fingerprint)).toEqual(
      [],
    );
  });

  it('counts a field the server does not report as a change', () => {
    const bare = ipsecServerSchema.parse({ IpsecServerId: 'iss-1' });
    expect(
      diffConfig(bare, params({ EffectImmediately: false, IkeConfig: { IkeMode: 'main' } }), fingerprint),
    ).toEqual([
      { field: 'EffectImmediately', from: undefined, to: false },
      { field: 'IkeConfig.IkeMode', from: undefined, to: 'main' },
    ]);
  });

  it('takes full UpdateIpsecServer params and ignores the non-mutable ones', () => {
    const full = updateIpsecServerParamsSchema.parse({
      IpsecServerId: 'iss-other',
      RegionId: 'cn-beijing',
      DryRun: true,
      ClientToken: 't',
      ClientIpPool: '10.1.0.0/24',
    });
    expect(diffConfig(server, full, fingerprint)).toEqual([
      { field: 'ClientIpPool', from: '10.0.0.0/24', to: '10.1.0.0/24' },
    ]);
  });
});

describe('isSatisfiedBy', () => {
  it('is true when the server already has everything the params set', () => {
    expect(
      isSatisfiedBy(
        server,
        params({
          IkeConfig: '{"IkeVersion":"ikev2","IkeLifetime":86400}',
          IpsecConfig: { IpsecAuthAlg: 'sha1' },
          PskEnabled: 'true',
          Psk: 'old-key',
          EffectImmediately: 'false',
        }),
      ),
    ).toBe(true);
  });

  it('is false as soon as one field differs', () => {
    expect(isSatisfiedBy(server, params({ IkeConfig: { IkeVersion: 'ikev2', IkeMode: 'aggressive' } }))).toBe(
      false,
    );
    expect(isSatisfiedBy(server, params({ Psk: 'other' }))).toBe(false);
  });
});
