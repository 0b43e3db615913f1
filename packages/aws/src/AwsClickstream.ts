/**
 * The deployed clickstream metrics functions, one layer per function, each read from the
 * function's environment through `Config` (as `AwsPipeline` does for the telemetry pipeline;
 * `@spillway/memory`'s `ClickstreamPipeline` offers the same layers over memory):
 *
 * | function        | stage                  | services                                  |
 * |-----------------|------------------------|-------------------------------------------|
 * | cleaner         | `Clean.clean`          | `RecordStream` (the clean stream)         |
 * | metrics         | `Derive.derive`        | `DedupCache` (+ `MetricLog`: its stdout)  |
 * | forwarder       | `Forward.forward`      | `MetricsSink`, `MetricSpool`, `DedupCache`|
 * | forward-retrier | `RetrySpool.retrySpool`| `MetricsSink`, `MetricSpool`              |
 *
 * The metrics function's `MetricLog` is its own stdout, provided by its handler (the lines must
 * go where its logs go: the log group the forwarder is subscribed to). Nothing is called while a
 * layer is built; the Datadog key is read on the first send.
 */
import { DedupCache, type MetricSpool, type MetricsSink, type RecordStream } from "@spillway/core"
import { type Config, Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import * as DatadogApiKey from "./DatadogApiKey.js"
import * as DatadogMetricsSink from "./DatadogMetricsSink.js"
import * as KinesisClient from "./KinesisClient.js"
import * as KinesisRecordStream from "./KinesisRecordStream.js"
import * as S3Client from "./S3Client.js"
import * as S3MetricSpool from "./S3MetricSpool.js"
import * as SecretsManagerClient from "./SecretsManagerClient.js"

/** The cleaner writes to the clean stream (`STREAM_ARN` or `STREAM_NAME` of the clean stream). */
export const cleaner: Layer.Layer<
  RecordStream.RecordStream,
  Config.ConfigError | RecordStream.RecordStreamError
> = /* @__PURE__ */ Layer.suspend(() =>
  KinesisRecordStream.layerConfig().pipe(Layer.provide(KinesisClient.layerConfig()))
)

/** The metrics function remembers counted events and session-minutes for its execution environment. */
export const metrics: Layer.Layer<DedupCache.DedupCache> = /* @__PURE__ */ Layer.suspend(() =>
  DedupCache.layer({ capacity: 2_000_000 })
)

/** Datadog's metrics API v2 (`DD_SITE`, `DD_METRICS_URL`, `DD_API_KEY_SECRET_ID`, `DD_TIMEOUT_MS`) over fetch. */
export const datadog: Layer.Layer<MetricsSink.MetricsSink, Config.ConfigError> =
  /* @__PURE__ */ Layer.suspend(() =>
    DatadogMetricsSink.layerConfig.pipe(
      Layer.provide(
        Layer.merge(
          FetchHttpClient.layer,
          DatadogApiKey.layerConfig.pipe(Layer.provide(SecretsManagerClient.layerConfig()))
        )
      )
    )
  )

/** The spool on S3 (`SPOOL_BUCKET`, `SPOOL_PREFIX`). */
export const spool: Layer.Layer<MetricSpool.MetricSpool, Config.ConfigError> = /* @__PURE__ */ Layer.suspend(
  () => S3MetricSpool.layerConfig.pipe(Layer.provide(S3Client.layerConfig()))
)

export const forwarder: Layer.Layer<
  MetricsSink.MetricsSink | MetricSpool.MetricSpool | DedupCache.DedupCache,
  Config.ConfigError
> = /* @__PURE__ */ Layer.suspend(() =>
  Layer.mergeAll(datadog, spool, DedupCache.layer({ capacity: 1_000_000 }))
)

export const forwardRetrier: Layer.Layer<
  MetricsSink.MetricsSink | MetricSpool.MetricSpool,
  Config.ConfigError
> = /* @__PURE__ */ Layer.suspend(() => Layer.mergeAll(datadog, spool))
