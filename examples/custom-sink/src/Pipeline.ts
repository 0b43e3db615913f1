/**
 * The example's processor layer: `AwsPipeline.processor` (the dedup cache and the OpenSearch sink)
 * with the JSON-lines sink fanned out next to OpenSearch. A document counts as written, and its id
 * enters the dedup cache, only when both hold it; a document either one refuses is `Rejected` for
 * the processor and goes the on-failure way with its record.
 *
 * `AwsPipeline` has no slot for an extra sink, so the layer is composed here from its parts
 * (`AwsPipeline.sink` and `S3Client.layerConfig`). Like `AwsPipeline`'s layers, these are lazy
 * and pure: importing this module reads no variable and builds nothing.
 *
 * Variables: those of `AwsPipeline.processor` (`OPENSEARCH_ENDPOINT`, `OPENSEARCH_INDEX`, …,
 * `AWS_REGION`), `CUSTOM_SINK_BUCKET`, `CUSTOM_SINK_PREFIX`, and for the S3 client
 * `AWS_ENDPOINT_URL_S3` and `AWS_S3_FORCE_PATH_STYLE`.
 */
import * as AwsPipeline from "@spillway/aws/AwsPipeline"
import * as S3Client from "@spillway/aws/S3Client"
import { DedupCache, DocumentSink } from "@spillway/core"
import { type Config, Effect, Layer } from "effect"
import * as JsonLinesS3Sink from "./JsonLinesS3Sink.js"

/** OpenSearch and the JSON-lines sink as one `DocumentSink`: `fanOut([opensearch, jsonLines])`. */
export const sink: Layer.Layer<DocumentSink.DocumentSink, Config.ConfigError> = /* @__PURE__ */ Layer.suspend(
  () =>
    Layer.effect(
      DocumentSink.DocumentSink,
      Effect.gen(function* () {
        // The OpenSearch sink, as `AwsPipeline.sink` provides it below.
        const opensearch = yield* DocumentSink.DocumentSink
        const jsonLines = yield* JsonLinesS3Sink.makeConfig()
        return DocumentSink.fanOut([opensearch, jsonLines])
      })
    ).pipe(Layer.provide(Layer.merge(AwsPipeline.sink, S3Client.layerConfig())))
)

/** The processor: the dedup cache and both sinks. */
export const processor: Layer.Layer<DedupCache.DedupCache | DocumentSink.DocumentSink, Config.ConfigError> =
  /* @__PURE__ */ Layer.suspend(() => Layer.mergeAll(DedupCache.layer(), sink))
