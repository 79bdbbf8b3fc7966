import { EndpointError } from './errors.js';

/**
 * Regions whose VPC API host does not follow `vpc.<regionId>.aliyuncs.com`, copied from the official
 * SDK (@alicloud/vpc20160428 7.3.2, `Client._endpointMap`). Most map to the central
 * `vpc.aliyuncs.com`; a few internal and edge zones have hosts of their own. A test compares this
 * table with the installed SDK's, so an SDK upgrade that changes it fails loudly.
 */
export const VPC_ENDPOINT_EXCEPTIONS: Readonly<Record<string, string>> = Object.freeze({
  'cn-hangzhou': 'vpc.aliyuncs.com',
  'cn-shanghai-finance-1': 'vpc.aliyuncs.com',
  'cn-shenzhen-finance-1': 'vpc.aliyuncs.com',
  'cn-north-2-gov-1': 'vpc.aliyuncs.com',
  'ap-northeast-2-pop': 'vpc.aliyuncs.com',
  'cn-beijing-finance-pop': 'vpc.aliyuncs.com',
  'cn-beijing-gov-1': 'vpc.aliyuncs.com',
  'cn-beijing-nu16-b01': 'vpc.aliyuncs.com',
  'cn-edge-1': 'vpc-nebula.cn-qingdao-nebula.aliyuncs.com',
  'cn-fujian': 'vpc.aliyuncs.com',
  'cn-haidian-cm12-c01': 'vpc.aliyuncs.com',
  'cn-hangzhou-bj-b01': 'vpc.aliyuncs.com',
  'cn-hangzhou-finance': 'vpc.aliyuncs.com',
  'cn-hangzhou-internal-prod-1': 'vpc.aliyuncs.com',
  'cn-hangzhou-internal-test-1': 'vpc-pre.cn-hangzhou.aliyuncs.com',
  'cn-hangzhou-internal-test-2': 'vpc-inner-pre.cn-hangzhou.aliyuncs.com',
  'cn-hangzhou-internal-test-3': 'vpc-pre.cn-hangzhou.aliyuncs.com',
  'cn-hangzhou-test-306': 'vpc-pre.cn-hangzhou.aliyuncs.com',
  'cn-hongkong-finance-pop': 'vpc.aliyuncs.com',
  'cn-huhehaote-nebula-1': 'vpc-nebula.cn-qingdao-nebula.aliyuncs.com',
  'cn-qingdao-nebula': 'vpc-nebula.cn-qingdao-nebula.aliyuncs.com',
  'cn-shanghai-et15-b01': 'vpc-pre.cn-hangzhou.aliyuncs.com',
  'cn-shanghai-et2-b01': 'vpc.aliyuncs.com',
  'cn-shanghai-inner': 'vpc.aliyuncs.com',
  'cn-shanghai-internal-test-1': 'vpc-pre.cn-hangzhou.aliyuncs.com',
  'cn-shenzhen-inner': 'vpc.aliyuncs.com',
  'cn-shenzhen-st4-d01': 'vpc.aliyuncs.com',
  'cn-shenzhen-su18-b01': 'vpc.aliyuncs.com',
  'cn-wuhan': 'vpc.aliyuncs.com',
  'cn-yushanfang': 'vpc.aliyuncs.com',
  'cn-zhangbei': 'vpc.aliyuncs.com',
  'cn-zhangbei-na61-b01': 'vpc.aliyuncs.com',
  'cn-zhangjiakou-na62-a01': 'vpc.cn-zhangjiakou.aliyuncs.com',
  'cn-zhengzhou-nebula-1': 'vpc-nebula.cn-qingdao-nebula.aliyuncs.com',
  'eu-west-1-oxs': 'vpc-nebula.cn-shenzhen-cloudstone.aliyuncs.com',
  'rus-west-1-pop': 'vpc.aliyuncs.com',
});

export const CENTRAL_VPC_HOST = 'vpc.aliyuncs.com';

// Region ids are lower-case words joined by hyphens; anything else would forge a host name.
const REGION_ID = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

export interface ResolveEndpointInput {
  /** Needed unless `override` is given. */
  regionId?: string | undefined;
  /** An explicit `http://` or `https://` URL (the simulator, a VPC endpoint, a proxy); wins over the table. */
  override?: string | undefined;
}

/** The origin (`scheme://host[:port]`) to send VPC API calls for `regionId` to. */
export function resolveEndpoint(input: ResolveEndpointInput): string {
  if (input.override !== undefined) return normalizeOverride(input.override);
  const { regionId } = input;
  if (regionId === undefined) throw new EndpointError('a region id or an explicit endpoint is needed');
  if (!REGION_ID.test(regionId)) {
    throw new EndpointError(`region id ${JSON.stringify(regionId)} is not a valid Alibaba Cloud region id`);
  }
  const host = Object.hasOwn(VPC_ENDPOINT_EXCEPTIONS, regionId)
    ? VPC_ENDPOINT_EXCEPTIONS[regionId]
    : `vpc.${regionId}.aliyuncs.com`;
  return `https://${host}`;
}

function normalizeOverride(override: string): string {
  let url: URL;
  try {
    url = new URL(override);
  } catch {
    throw new EndpointError(
      `endpoint override ${JSON.stringify(override)} is not a URL with a scheme (https://host[:port])`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new EndpointError(`endpoint override ${JSON.stringify(override)} must use http:// or https://`);
  }
  // RPC calls always go to `/` and sign that path, so a path, query or credentials here would be dropped silently.
  if (
    (url.pathname !== '/' && url.pathname !== '') ||
    url.search ||
    url.hash ||
    url.username ||
    url.password
  ) {
    throw new EndpointError(
      `endpoint override ${JSON.stringify(override)} must be an origin only (no path, query or user)`,
    );
  }
  return url.origin;
}
