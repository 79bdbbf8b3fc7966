/** The simulator (`ipsec-fleet sim`) as a library, for tests and benchmarks. */
export type { SimAccessKey } from './auth.js';
export { SimError, simErrors } from './errors.js';
export type { SimHistoryEntry, SimServerRecord, SimServerSummary, SimServerView } from './fleet.js';
export {
  type SimFaults,
  type SimFaultsPatch,
  type SimulatorOptions,
  type SimulatorOptionsInput,
  simAccessKeySchema,
  simFaultsSchema,
  simulatorOptionsSchema,
} from './options.js';
export { type SimulatorHandle, type SimulatorRuntime, startSimulator } from './server.js';
export type { SimStats } from './stats.js';
