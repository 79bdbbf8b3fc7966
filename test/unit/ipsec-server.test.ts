import { describe, expect, it } from 'vitest';
import { pskFingerprinter } from '../../src/ipsec/psk.js';
import {
  ipsecServerSchema,
  listIpsecServersResponseSchema,
  redactServer,
  updateIpsecServerResponseSchema,
} from '../../src/ipsec/server.js';
import { fieldIssues } from '../../src/validation.js';

/** A server as the official SDK models it (ListIpsecServersResponseBodyIpsecServers). */
const sdkServer = {
  IpsecServerId: 'iss-bp1bo3xuvcxo7ixll0000',
  IpsecServerName: 'test',
  RegionId: 'cn-hangzhou',
  VpnGatewayId: 'vpn-bp1q8bgx4xnkm2ogj0000',
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
    LocalId: '116.64.0.1',
    RemoteId: '139.67.0.1',
  },
  IpsecConfig: { IpsecEncAlg: 'aes', IpsecAuthAlg: 'sha1', IpsecPfs: 'group2', IpsecLifetime: 86400 },
  PskEnabled: true,
  Psk: 'pgw6dy7d0000',
  InternetIp: '47.22.0.1',
  CreationTime: '2018-12-03T10:11:55Z',
  MaxConnections: 5,
  OnlineClientCount: 1,
  MultiFactorAuthEnabled: true,
  IDaaSInstanceId: 'idaas-cn-hangzhou-0000',
  ResourceGroupId: 'rg-acfmzs372yg0000',
};

const page = {
  RequestId: '54B48E3D-DF70-471B-AA93-08E683A1B457',
  TotalCount: 1,
  MaxResults: 10,
  NextToken: '',
  IpsecServers: [sdkServer],
};

describe('ListIpsecServers response', () => {
  it('reads a response shaped like the official SDK model as is', () => {
    expect(listIpsecServersResponseSchema.parse(page)).toEqual(page);
  });

  it('keeps fields it does not know, at every level', () => {
    const parsed = listIpsecServersResponseSchema.parse({
      ...page,
      Extra: 1,
      IpsecServers: [
        { ...sdkServer, NewAttribute: 'x', IkeConfig: { ...sdkServer.IkeConfig, IkeSomething: 'y' } },
      ],
    });
    expect(parsed.Extra).toBe(1);
    expect(parsed.IpsecServers[0]?.NewAttribute).toBe('x');
    expect(parsed.IpsecServers[0]?.IkeConfig?.IkeSomething).toBe('y');
  });

  it('accepts values the request schema would refuse: new algorithms are reported, not rejected', () => {
    const server = ipsecServerSchema.parse({
      ...sdkServer,
      IkeConfig: { IkeEncAlg: 'sm4', IkePfs: 'group24' },
      LocalSubnet: '192.168.1.5/24',
    });
    expect(server.IkeConfig).toEqual({ IkeEncAlg: 'sm4', IkePfs: 'group24' });
    expect(server.LocalSubnet).toBe('192.168.1.5/24');
  });

  it('normalizes configs given as JSON strings to objects', () => {
    const server = ipsecServerSchema.parse({
      IpsecServerId: 'iss-1',
      IkeConfig: JSON.stringify(sdkServer.IkeConfig),
      IpsecConfig: '{"IpsecPfs":"disabled","IpsecLifetime":"3600"}',
    });
    expect(server.IkeConfig).toEqual(sdkServer.IkeConfig);
    expect(server.IpsecConfig).toEqual({ IpsecPfs: 'disabled', IpsecLifetime: 3600 });
  });

  it('treats an empty config string as an empty config', () => {
    expect(ipsecServerSchema.parse({ IpsecServerId: 'iss-1', IkeConfig: '' }).IkeConfig).toEqual({});
  });

  it('reads numbers and booleans given as strings, and null as absent', () => {
    const server = ipsecServerSchema.parse({
      IpsecServerId: 'iss-1',
      EffectImmediately: 'true',
      PskEnabled: 'true',
      MaxConnections: '5',
      OnlineClientCount: null,
      Psk: null,
      IkeConfig: null,
    });
    expect(server).toMatchObject({ EffectImmediately: true, PskEnabled: true, MaxConnections: 5 });
    expect(server.OnlineClientCount).toBeUndefined();
    expect(server.Psk).toBeUndefined();
    expect(server.IkeConfig).toBeUndefined();
    const nested = ipsecServerSchema.parse({
      IpsecServerId: 'iss-1',
      IpsecConfig: { IpsecPfs: null, IpsecLifetime: '3600', Unknown: null },
    });
    // Null known fields are absent; unknown fields are kept as they came.
    expect(nested.IpsecConfig).toEqual({ IpsecLifetime: 3600, Unknown: null });
    const totals = listIpsecServersResponseSchema.parse({ ...page, TotalCount: '7', NextToken: null });
    expect(totals.TotalCount).toBe(7);
    expect(totals.NextToken).toBeUndefined();
  });

  it('accepts a server with only its id', () => {
    expect(ipsecServerSchema.parse({ IpsecServerId: 'iss-1' })).toEqual({ IpsecServerId: 'iss-1' });
  });

  it.each([
    ['no RequestId', { IpsecServers: [] }, 'RequestId'],
    ['no server list', { RequestId: 'r' }, 'IpsecServers'],
    ['server list not an array', { RequestId: 'r', IpsecServers: {} }, 'IpsecServers'],
    [
      'a server without id',
      { RequestId: 'r', IpsecServers: [{ IpsecServerName: 'x' }] },
      'IpsecServers.0.IpsecServerId',
    ],
    [
      'a server with an empty id',
      { RequestId: 'r', IpsecServers: [{ IpsecServerId: '' }] },
      'IpsecServers.0.IpsecServerId',
    ],
    [
      'an unparsable IkeConfig string',
      { RequestId: 'r', IpsecServers: [{ IpsecServerId: 'i', IkeConfig: '{oops' }] },
      'IpsecServers.0.IkeConfig',
    ],
    [
      'a non-numeric lifetime',
      { RequestId: 'r', IpsecServers: [{ IpsecServerId: 'i', IpsecConfig: { IpsecLifetime: 'long' } }] },
      'IpsecServers.0.IpsecConfig.IpsecLifetime',
    ],
    [
      'a wrong-typed boolean',
      { RequestId: 'r', IpsecServers: [{ IpsecServerId: 'i', PskEnabled: 'yes' }] },
      'IpsecServers.0.PskEnabled',
    ],
  ])('refuses %s, naming the field', (_label, body, field) => {
    const result = listIpsecServersResponseSchema.safeParse(body);
    expect(result.success).toBe(false);
    expect(fieldIssues(result.error!).map((issue) => issue.field)).toContain(field);
  });
});

describe('UpdateIpsecServer response', () => {
  it('needs a RequestId and keeps the rest', () => {
    expect(updateIpsecServerResponseSchema.parse({ RequestId: 'r', Other: 1 })).toEqual({
      RequestId: 'r',
      Other: 1,
    });
    expect(updateIpsecServerResponseSchema.safeParse({}).success).toBe(false);
  });
});

describe('redactServer', () => {
  it('replaces the Psk by its fingerprint and leaves the rest', () => {
    const server = ipsecServerSchema.parse(sdkServer);
    const fingerprint = pskFingerprinter(Buffer.alloc(32, 1));
    const redacted = redactServer(server, fingerprint);
    expect(redacted.Psk).toBe(fingerprint('pgw6dy7d0000'));
    expect(JSON.stringify(redacted)).not.toContain('pgw6dy7d0000');
    expect({ ...redacted, Psk: server.Psk }).toEqual(server);
    expect(server.Psk).toBe('pgw6dy7d0000');
  });

  it('leaves a server without Psk as it is', () => {
    const server = ipsecServerSchema.parse({ IpsecServerId: 'iss-1' });
    expect(redactServer(server, pskFingerprinter(undefined))).toBe(server);
  });
});
