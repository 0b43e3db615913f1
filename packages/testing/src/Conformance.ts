/**
 * The conformance suites: one per service, run by every backend of it — in memory, on an
 * emulator, a user's own — so a new backend proves it behaves like the others by passing the
 * same tests. Every suite takes the same options (`name`, `layer`, `clock`, `faults?`); a sink
 * runs `documentSinkSuite` in a few lines.
 */
export {
  ArchiveFaults,
  type ArchiveFaultsService,
  type ArchiveSuiteOptions,
  archiveSuite,
  type Compression
} from "./conformance/ArchiveSuite.js"
export {
  type DocumentSinkSuiteOptions,
  documentSinkSuite,
  SinkFaults,
  type SinkFaultsService
} from "./conformance/DocumentSinkSuite.js"
export {
  type FallbackQueueSuiteOptions,
  fallbackQueueSuite,
  QueueFaults,
  type QueueFaultsService,
  type QueueOptions
} from "./conformance/FallbackQueueSuite.js"
export {
  type HeldPoint,
  MetricsSinkFaults,
  type MetricsSinkFaultsService,
  type MetricsSinkSuiteOptions,
  metricsSinkSuite
} from "./conformance/MetricsSinkSuite.js"
export {
  type RecordStreamSuiteOptions,
  recordStreamSuite,
  StreamFaults,
  type StreamFaultsService
} from "./conformance/RecordStreamSuite.js"
export type { SuiteClock, SuiteOptions } from "./conformance/Suite.js"
