import { describeRegions } from './describe-regions.js';
import { listIpsecServers } from './list-ipsec-servers.js';
import type { ActionHandler } from './types.js';
import { updateIpsecServer } from './update-ipsec-server.js';

/** The calls the simulator serves; anything else is InvalidAction.NotFound. */
export const ACTIONS: ReadonlyMap<string, ActionHandler> = new Map([
  ['UpdateIpsecServer', updateIpsecServer],
  ['ListIpsecServers', listIpsecServers],
  ['DescribeRegions', describeRegions],
]);

export const UPDATE_ACTION = 'UpdateIpsecServer';
export const API_VERSION = '2016-04-28';

export type { ActionContext, ActionHandler, ActionResult } from './types.js';
