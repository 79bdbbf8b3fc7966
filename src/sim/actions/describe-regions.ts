import { z } from 'zod';
import { CENTRAL_VPC_HOST, VPC_ENDPOINT_EXCEPTIONS } from '../../aliyun/endpoint.js';
import { parseOrThrow } from '../../validation.js';
import { parseParams } from '../params.js';
import type { ActionContext, ActionResult } from './types.js';

/**
 * DescribeRegions: the regions this simulator serves (the ones its fleet lives in), each with its
 * name and the VPC endpoint the official endpoint table gives it.
 */

const LOCAL_NAMES: Readonly<Record<string, readonly [zh: string, en: string]>> = {
  'cn-qingdao': ['华北1（青岛）', 'China (Qingdao)'],
  'cn-beijing': ['华北2（北京）', 'China (Beijing)'],
  'cn-zhangjiakou': ['华北3（张家口）', 'China (Zhangjiakou)'],
  'cn-huhehaote': ['华北5（呼和浩特）', 'China (Hohhot)'],
  'cn-wulanchabu': ['华北6（乌兰察布）', 'China (Ulanqab)'],
  'cn-hangzhou': ['华东1（杭州）', 'China (Hangzhou)'],
  'cn-shanghai': ['华东2（上海）', 'China (Shanghai)'],
  'cn-nanjing': ['华东5（南京-本地地域）', 'China (Nanjing - Local Region)'],
  'cn-fuzhou': ['华东6（福州-本地地域）', 'China (Fuzhou - Local Region)'],
  'cn-shenzhen': ['华南1（深圳）', 'China (Shenzhen)'],
  'cn-heyuan': ['华南2（河源）', 'China (Heyuan)'],
  'cn-guangzhou': ['华南3（广州）', 'China (Guangzhou)'],
  'cn-chengdu': ['西南1（成都）', 'China (Chengdu)'],
  'cn-hongkong': ['中国香港', 'China (Hong Kong)'],
  'ap-southeast-1': ['新加坡', 'Singapore'],
  'ap-southeast-3': ['马来西亚（吉隆坡）', 'Malaysia (Kuala Lumpur)'],
  'ap-southeast-5': ['印度尼西亚（雅加达）', 'Indonesia (Jakarta)'],
  'ap-northeast-1': ['日本（东京）', 'Japan (Tokyo)'],
  'ap-northeast-2': ['韩国（首尔）', 'South Korea (Seoul)'],
  'us-west-1': ['美国（硅谷）', 'US (Silicon Valley)'],
  'us-east-1': ['美国（弗吉尼亚）', 'US (Virginia)'],
  'eu-central-1': ['德国（法兰克福）', 'Germany (Frankfurt)'],
  'eu-west-1': ['英国（伦敦）', 'UK (London)'],
};

const describeRegionsSchema = z.strictObject({
  RegionId: z.string().optional(),
  AcceptLanguage: z.enum(['zh-CN', 'en-US', 'ja'], { error: 'must be zh-CN, en-US or ja' }).optional(),
  ProductType: z.string().optional(),
});

function regionEndpoint(regionId: string): string {
  return (
    VPC_ENDPOINT_EXCEPTIONS[regionId] ?? (regionId === '' ? CENTRAL_VPC_HOST : `vpc.${regionId}.aliyuncs.com`)
  );
}

export function describeRegions(context: ActionContext): ActionResult {
  const query = parseParams(
    (wire) => parseOrThrow(describeRegionsSchema, wire, 'DescribeRegions parameters'),
    context.params,
  );
  const english = query.AcceptLanguage === 'en-US';
  const regions = context.state.options.regions.map((regionId) => {
    const names = LOCAL_NAMES[regionId];
    return {
      RegionId: regionId,
      LocalName: names ? (english ? names[1] : names[0]) : regionId,
      RegionEndpoint: regionEndpoint(regionId),
    };
  });
  return {
    requestId: context.requestId,
    body: { RequestId: context.requestId, Regions: { Region: regions } },
  };
}
