import { IpsecFleetError } from '../errors.js';
import { describeIssues, type FieldIssue } from '../validation.js';

/** The cloud answered 200 with a body that does not fit the documented response. */
export class IpsecResponseError extends IpsecFleetError {
  readonly action: string;
  readonly issues: FieldIssue[];

  constructor(action: string, issues: FieldIssue[]) {
    super('IPSEC_BAD_RESPONSE', `unexpected ${action} response: ${describeIssues(issues)}`);
    this.action = action;
    this.issues = issues;
  }
}

/** ListIpsecServers does not know the server (wrong id, wrong region, or deleted). */
export class IpsecServerNotFoundError extends IpsecFleetError {
  readonly regionId: string;
  readonly ipsecServerId: string;

  constructor(regionId: string, ipsecServerId: string) {
    super('IPSEC_SERVER_NOT_FOUND', `IPsec server ${ipsecServerId} not found in region ${regionId}`);
    this.regionId = regionId;
    this.ipsecServerId = ipsecServerId;
  }
}

/**
 * A dry run came back as a success. The cloud answers a passed dry run with the error
 * DryRunOperation, so a 200 means DryRun was not honoured and the change may have been applied:
 * the one outcome invariant 1 must never hide.
 */
export class DryRunNotHonouredError extends IpsecFleetError {
  readonly requestId: string;

  constructor(requestId: string) {
    super(
      'IPSEC_DRY_RUN_NOT_HONOURED',
      `UpdateIpsecServer with DryRun=true answered success (RequestId ${requestId}): the change may have been applied`,
    );
    this.requestId = requestId;
  }
}
