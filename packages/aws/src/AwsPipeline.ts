/**
 * The deployed pipeline, one layer per function, each read from the function's environment
 * through `Config`: the layer a Lambda handler's `ManagedRuntime` is built from, providing exactly
 * the services its stage asks for (`MemoryPipeline` offers the same layers over memory backends).
 *
 * | function            | stage                      | services                                   |
 * |---------------------|----------------------------|--------------------------------------------|
 * | collector           | `CollectorHttp` / `collect`| `ApiKeys`, `RecordStream`, `FallbackQueue` |
 * | redriver            | `redrive`                  | `RecordStream`, `FallbackQueue`            |
 * | processor           | `process`                  | `DedupCache`, `DocumentSink`               |
 * | failure-reprocessor | `replay`                   | `RecordStream`, `DedupCache`, `DocumentSink` |
 * | backup-replayer     | archive → stream           | `Archive`, `RecordStream`                  |
 * | (operator) restore  | `restore` (archive → sink) | `Archive`, `DedupCache`, `DocumentSink`    |
 *
 * Each layer builds its SDK clients once (scoped: destroyed when the runtime is disposed) and
 * fails at start, naming the variable, when one is missing or malformed; no AWS call is made
 * while building unless the configuration asks for one (`STREAM_NAME` is resolved to its ARN).
 * The dedup cache lives as long as the function's execution environment, so a warm processor
 * skips ids it wrote in earlier invocations. The collector takes its `ApiKeys` layer as an
 * argument (`collector`); `collectorFromConfig` passes the key store read from Secrets Manager or
 * SSM as `API_KEYS_SOURCE` says (`ApiKeyStore.layerConfig`, which reads nothing while building).
 */
import {
  type ApiKeys,
  type Archive,
  DedupCache,
  type DocumentSink,
  type FallbackQueue,
  type RecordStream
} from "@spillway/core"
import { type Config, Layer } from "effect"
import * as ApiKeyStore from "./ApiKeyStore.js"
import * as FirehoseArchive from "./FirehoseArchive.js"
import * as KinesisClient from "./KinesisClient.js"
import * as KinesisRecordStream from "./KinesisRecordStream.js"
import * as OpenSearchClient from "./OpenSearchClient.js"
import * as OpenSearchSink from "./OpenSearchSink.js"
import * as S3Client from "./S3Client.js"
import * as SqsClient from "./SqsClient.js"
import * as SqsFallbackQueue from "./SqsFallbackQueue.js"

/** The Kinesis stream (`STREAM_ARN` or `STREAM_NAME`). */
export const stream: Layer.Layer<
  RecordStream.RecordStream,
  Config.ConfigError | RecordStream.RecordStreamError
> = /* @__PURE__ */ Layer.suspend(() =>
  KinesisRecordStream.layerConfig().pipe(Layer.provide(KinesisClient.layerConfig()))
)

/** The SQS fallback queue (`FALLBACK_QUEUE_URL`). */
export const fallbackQueue: Layer.Layer<
  FallbackQueue.FallbackQueue,
  Config.ConfigError | FallbackQueue.FallbackQueueError
> = /* @__PURE__ */ Layer.suspend(() =>
  SqsFallbackQueue.layerConfig().pipe(Layer.provide(SqsClient.layerConfig()))
)

/** The OpenSearch sink (`OPENSEARCH_ENDPOINT`, `OPENSEARCH_INDEX` as the alias of daily indices, …), SigV4-signed. */
export const sink: Layer.Layer<DocumentSink.DocumentSink, Config.ConfigError> = /* @__PURE__ */ Layer.suspend(
  () => OpenSearchSink.layerConfig().pipe(Layer.provide(OpenSearchClient.layerConfig()))
)

/** The Firehose backup archive on S3 (`ARCHIVE_BUCKET`, `FIREHOSE_STREAM_NAME`, `ARCHIVE_PREFIX`, `ARCHIVE_COMPRESSION`). */
export const archive: Layer.Layer<Archive.Archive, Config.ConfigError> = /* @__PURE__ */ Layer.suspend(() =>
  FirehoseArchive.layerConfig.pipe(Layer.provide(S3Client.layerConfig()))
)

/** The collector: the stream, the fallback queue, and the key store the handler chooses. */
export const collector = <E, R>(
  apiKeys: Layer.Layer<ApiKeys.ApiKeys, E, R>
): Layer.Layer<
  ApiKeys.ApiKeys | RecordStream.RecordStream | FallbackQueue.FallbackQueue,
  E | Config.ConfigError | RecordStream.RecordStreamError | FallbackQueue.FallbackQueueError,
  R
> => Layer.mergeAll(apiKeys, stream, fallbackQueue)

/**
 * The API keys from Secrets Manager or SSM, cached (`API_KEYS_SOURCE`, `API_KEYS_SECRET_ID` or
 * `API_KEYS_PARAMETER_NAME`, `API_KEYS_TTL_SECONDS`, `API_KEYS_MAX_STALE_SECONDS`).
 */
export const apiKeys: Layer.Layer<ApiKeys.ApiKeys, Config.ConfigError> = /* @__PURE__ */ Layer.suspend(() =>
  ApiKeyStore.layerConfig()
)

/** The collector with the key store `apiKeys` reads from the environment. */
export const collectorFromConfig: Layer.Layer<
  ApiKeys.ApiKeys | RecordStream.RecordStream | FallbackQueue.FallbackQueue,
  Config.ConfigError | RecordStream.RecordStreamError | FallbackQueue.FallbackQueueError
> = /* @__PURE__ */ Layer.suspend(() => collector(apiKeys))

/** The redriver: puts what the fallback queue holds back into the stream. */
export const redriver: Layer.Layer<
  RecordStream.RecordStream | FallbackQueue.FallbackQueue,
  Config.ConfigError | RecordStream.RecordStreamError | FallbackQueue.FallbackQueueError
> = /* @__PURE__ */ Layer.suspend(() => Layer.mergeAll(stream, fallbackQueue))

/** The processor: the dedup cache and the sink. */
export const processor: Layer.Layer<DedupCache.DedupCache | DocumentSink.DocumentSink, Config.ConfigError> =
  /* @__PURE__ */ Layer.suspend(() => Layer.mergeAll(DedupCache.layer(), sink))

/** The failure reprocessor: reads failed ranges back from the stream, then processes them. */
export const failureReprocessor: Layer.Layer<
  RecordStream.RecordStream | DedupCache.DedupCache | DocumentSink.DocumentSink,
  Config.ConfigError | RecordStream.RecordStreamError
> = /* @__PURE__ */ Layer.suspend(() => Layer.mergeAll(stream, DedupCache.layer(), sink))

/** The backup replayer: puts what the archive holds for a window back into the stream. */
export const backupReplayer: Layer.Layer<
  Archive.Archive | RecordStream.RecordStream,
  Config.ConfigError | RecordStream.RecordStreamError
> = /* @__PURE__ */ Layer.suspend(() => Layer.mergeAll(archive, stream))

/** A restore after losing the index: what the archive holds, written into the sink past the cache. */
export const restore: Layer.Layer<
  Archive.Archive | DedupCache.DedupCache | DocumentSink.DocumentSink,
  Config.ConfigError
> = /* @__PURE__ */ Layer.suspend(() => Layer.mergeAll(archive, DedupCache.layer(), sink))
