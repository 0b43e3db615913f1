/**
 * @spillway/lambdas: the Lambda functions. Each deployable function is an entry file exporting
 * `handler` (`collector.ts`, `redriver.ts`, `processor.ts`, `failure-reprocessor.ts`,
 * `backup-replayer.ts`: `index.handler` once bundled), a few lines giving a function module
 * (`functions/`) its `AwsPipeline` layer. A function module is `make(layer, options)`, so tests run
 * the same handler over a memory pipeline's layer. `runtime/` is what they share: the managed
 * runtime, event decoding, the deadline, partial batch responses, JSON logs and EMF metrics.
 */
export * as BackupReplayer from "./functions/BackupReplayer.js"
export * as Cleaner from "./functions/Cleaner.js"
export * as ClickstreamMetrics from "./functions/ClickstreamMetrics.js"
export * as Collector from "./functions/Collector.js"
export * as FailureReprocessor from "./functions/FailureReprocessor.js"
export * as Forwarder from "./functions/Forwarder.js"
export * as ForwardRetrier from "./functions/ForwardRetrier.js"
export * as Processor from "./functions/Processor.js"
export * as Redriver from "./functions/Redriver.js"
export * as BatchResponse from "./runtime/BatchResponse.js"
export * as Deadline from "./runtime/Deadline.js"
export * as EmbeddedMetrics from "./runtime/EmbeddedMetrics.js"
export * as JsonLog from "./runtime/JsonLog.js"
export * as LambdaHandler from "./runtime/LambdaHandler.js"
export * as MetricLogStdout from "./runtime/MetricLogStdout.js"
