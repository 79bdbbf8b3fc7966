/** The domain of UpdateIpsecServer/ListIpsecServers, for the orchestrator, API, CLI and simulator. */
export * from './algorithms.js';
export * from './api.js';
export * from './cidr.js';
export * from './classify-error.js';
export { diffConfig, type FieldChange, type FieldValue, isSatisfiedBy } from './diff.js';
export * from './errors.js';
export { REQUIRED_RULE } from './field-rules.js';
export * from './host-id.js';
export * from './ike-config.js';
export * from './ipsec-config.js';
export * from './list-request.js';
export * from './psk.js';
export * from './server.js';
export * from './update-params.js';
export * from './wire.js';
