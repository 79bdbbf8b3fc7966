import { createRequire } from 'node:module';
import type VpcSdkModule from '@alicloud/vpc20160428';
import { describe, expect, it } from 'vitest';
import { resolveEndpoint, VPC_ENDPOINT_EXCEPTIONS } from '../../src/aliyun/endpoint.js';
import { EndpointError } from '../../src/aliyun/errors.js';

// The SDK is CommonJS with `exports.default = Client`; require() gives the same object under
// Node and vitest, whose default-import interop otherwise disagrees with TypeScript's.
const vpcSdk = createRequire(import.meta.url)('@alicloud/vpc20160428') as typeof VpcSdkModule;
const VpcClient = vpcSdk.default;

/** The official client computes its endpoint in the constructor; no request is made. */
function officialEndpoint(regionId: string): string {
  const client = new VpcClient({ accessKeyId: 'ak', accessKeySecret: 'sk', regionId } as never);
  return (client as unknown as { _endpoint: string })._endpoint;
}

function officialEndpointMap(): Record<string, string> {
  const client = new VpcClient({
    accessKeyId: 'ak',
    accessKeySecret: 'sk',
    regionId: 'cn-shanghai',
  } as never);
  return (client as unknown as { _endpointMap: Record<string, string> })._endpointMap;
}

describe('resolveEndpoint', () => {
  it('encodes exactly the exception table of the installed official SDK', () => {
    expect({ ...VPC_ENDPOINT_EXCEPTIONS }).toEqual(officialEndpointMap());
  });

  it('agrees with the official SDK for every exception and for regional regions', () => {
    const regions = [
      ...Object.keys(officialEndpointMap()),
      'cn-shanghai',
      'cn-beijing',
      'cn-shenzhen',
      'cn-hongkong',
      'ap-southeast-1',
      'eu-central-1',
      'us-west-1',
    ];
    for (const regionId of regions) {
      expect(resolveEndpoint({ regionId }), regionId).toBe(`https://${officialEndpoint(regionId)}`);
    }
  });

  it('sends cn-hangzhou and the finance/gov regions to the central endpoint', () => {
    for (const regionId of [
      'cn-hangzhou',
      'cn-hangzhou-finance',
      'cn-shanghai-finance-1',
      'cn-north-2-gov-1',
    ]) {
      expect(resolveEndpoint({ regionId })).toBe('https://vpc.aliyuncs.com');
    }
    expect(resolveEndpoint({ regionId: 'cn-shanghai' })).toBe('https://vpc.cn-shanghai.aliyuncs.com');
  });

  it('lets an explicit URL win, keeping scheme and port', () => {
    expect(resolveEndpoint({ regionId: 'cn-hangzhou', override: 'http://127.0.0.1:8080' })).toBe(
      'http://127.0.0.1:8080',
    );
    expect(resolveEndpoint({ override: 'https://vpc-vpc.cn-shanghai.aliyuncs.com/' })).toBe(
      'https://vpc-vpc.cn-shanghai.aliyuncs.com',
    );
  });

  it.each([
    'vpc.cn-shanghai.aliyuncs.com',
    'ftp://vpc.aliyuncs.com',
    'https://vpc.aliyuncs.com/some/path',
    'https://vpc.aliyuncs.com/?a=1',
    'https://user:pw@vpc.aliyuncs.com',
  ])('rejects the override %j', (override) => {
    expect(() => resolveEndpoint({ regionId: 'cn-shanghai', override })).toThrow(EndpointError);
  });

  it.each(['', 'CN-SHANGHAI', 'cn-shanghai.evil.com', 'cn_shanghai', 'cn-shanghai/x'])(
    'rejects the region id %j',
    (regionId) => {
      expect(() => resolveEndpoint({ regionId })).toThrow(EndpointError);
    },
  );

  it('needs a region id when there is no override', () => {
    expect(() => resolveEndpoint({})).toThrow(/region id/);
  });

  it('does not treat inherited object keys as exceptions', () => {
    expect(() => resolveEndpoint({ regionId: 'constructor' })).not.toThrow();
    expect(resolveEndpoint({ regionId: 'constructor' })).toBe('https://vpc.constructor.aliyuncs.com');
  });
});
