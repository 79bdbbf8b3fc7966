import { z } from 'zod';
import { intInRange, nonEmptyString, shown, stringField } from './field-rules.js';
import { regionIdSchema } from './update-params.js';

/**
 * ListIpsecServers' request, as the official SDK's ListIpsecServersRequest models it
 * (@alicloud/vpc20160428 7.x): RegionId is required, IpsecServerId is a list, MaxResults is 1–20.
 * ResourceGroupId is in the SDK model though not in our facts sheet; it is accepted so that a
 * request the SDK would send is not refused here.
 */

export const MAX_PAGE_SIZE = 20;

const pageSizeRule = (issue: { input?: unknown }) =>
  `must be an integer from 1 to ${MAX_PAGE_SIZE} (got ${shown(issue.input)})`;
// A number, or its digits as the wire gives it.
const pageSize = z
  .union([z.number(), z.string().regex(/^\d+$/, { error: pageSizeRule })], { error: pageSizeRule })
  .transform(Number)
  .pipe(intInRange(1, MAX_PAGE_SIZE));

export const listIpsecServersQuerySchema = z.strictObject(
  {
    RegionId: regionIdSchema,
    VpnGatewayId: nonEmptyString().optional(),
    IpsecServerName: nonEmptyString().optional(),
    IpsecServerId: z
      .array(nonEmptyString(), { error: 'must be a list of IPsec server ids' })
      .min(1, 'must list at least one id when given')
      .optional(),
    ResourceGroupId: nonEmptyString().optional(),
    MaxResults: pageSize.optional(),
    NextToken: stringField().optional(),
  },
  { error: 'must be an object' },
);

export type ListIpsecServersQuery = z.infer<typeof listIpsecServersQuerySchema>;
export type ListIpsecServersQueryInput = z.input<typeof listIpsecServersQuerySchema>;
