/**
 * The whole telemetry pipeline on in-memory backends, wired as it is deployed: collector →
 * stream (→ fallback queue → redriver → stream) → event source mapping → processor → index, with
 * the on-failure destination and replay, and the stream backed up by Firehose into an hourly
 * archive. Tests drive it on `TestClock`; `spillway dev` drives it
 * on the live clock. The stages are the core programs, unchanged: only the layers differ.
 */
import {
  ApiKeys,
  Archive,
  Collect,
  DedupCache,
  DocumentSink,
  FallbackQueue,
  Process,
  RecordStream,
  Redrive,
  Replay,
  Restore
} from "@spillway/core"
import { Context, Effect, Layer, type Scope } from "effect"
import * as FirehoseDelivery from "./FirehoseDelivery.js"
import * as KinesisEventSource from "./KinesisEventSource.js"
import * as MemoryArchive from "./MemoryArchive.js"
import * as MemoryFailureDestination from "./MemoryFailureDestination.js"
import * as MemoryIndex from "./MemoryIndex.js"
import * as MemoryQueue from "./MemoryQueue.js"
import * as MemoryStream from "./MemoryStream.js"
import * as SqsEventSource from "./SqsEventSource.js"

export interface Options {
  readonly stream?: MemoryStream.Options
  readonly queue?: MemoryQueue.Options
  /** Receives after which a fallback message moves to the dead-letter queue. @default 1000 */
  readonly maxReceiveCount?: number
  readonly index?: MemoryIndex.Options
  /** Defaults are Spillway's recommended mapping: bisect, partial batch response, 3 retries, on-failure destination. */
  readonly processor?: Partial<KinesisEventSource.Config>
  readonly redriver?: SqsEventSource.Config
  /** @default capacity 1,000,000 */
  readonly dedup?: Parameters<typeof DedupCache.make>[0]
  /** @default one tenant "demo" with key "demo-key" */
  readonly apiKeys?: ReadonlyArray<{ readonly tenant: string; readonly key: string }>
  /** Extra sinks written next to the index; every document must land in all of them. */
  readonly extraSinks?: ReadonlyArray<DocumentSink.Service>
  readonly collect?: Collect.CollectOptions
  readonly archive?: MemoryArchive.Options
  /**
   * The Firehose backup of the stream into `archive`; `false` leaves it out (a simulation that
   * only measures delay). @default `defaultBackupConfig`
   */
  readonly backup?: FirehoseDelivery.Config | false
}

/**
 * Firehose's buffering for a local pipeline: 60 s (Firehose's minimum before zero buffering, and
 * a common production choice) so objects appear while you watch; 5 MiB as Firehose's default.
 */
export const defaultBackupConfig: FirehoseDelivery.Config = {
  bufferingIntervalSeconds: 60,
  bufferingSizeBytes: 5 * 1024 * 1024
}

export const defaultApiKeys = [{ tenant: "demo", key: "demo-key" }] as const

/** The processor mapping Spillway recommends (and deploys). */
export const recommendedProcessorConfig: KinesisEventSource.Config = {
  startingPosition: "TRIM_HORIZON",
  batchSize: 500,
  maximumBatchingWindowInSeconds: 0,
  bisectBatchOnFunctionError: true,
  reportBatchItemFailures: true,
  maximumRetryAttempts: 3
}

/**
 * One layer per function, as `AwsPipeline` offers them over AWS: exactly the services each
 * function's stage asks for, here over this pipeline's memory backends.
 */
export interface Layers {
  readonly collector: Layer.Layer<ApiKeys.ApiKeys | RecordStream.RecordStream | FallbackQueue.FallbackQueue>
  readonly redriver: Layer.Layer<RecordStream.RecordStream | FallbackQueue.FallbackQueue>
  readonly processor: Layer.Layer<DedupCache.DedupCache | DocumentSink.DocumentSink>
  readonly failureReprocessor: Layer.Layer<
    RecordStream.RecordStream | DedupCache.DedupCache | DocumentSink.DocumentSink
  >
  readonly backupReplayer: Layer.Layer<Archive.Archive | RecordStream.RecordStream>
  readonly restore: Layer.Layer<Archive.Archive | DedupCache.DedupCache | DocumentSink.DocumentSink>
}

export interface Pipeline {
  /** The functions' layers over this pipeline's backends. */
  readonly layers: Layers
  readonly collect: (
    apiKey: string | undefined,
    body: unknown
  ) => Effect.Effect<
    Collect.CollectResult,
    ApiKeys.Unauthorized | ApiKeys.KeyStoreUnavailable | Collect.InvalidBody
  >
  /** Re-reads every batch the processor gave up on and processes it again. */
  readonly replayFailures: Effect.Effect<Replay.ReplayResult>
  /**
   * Writes again every record the backup archive holds for `range` (after `index.restoreSnapshot`):
   * the disaster-recovery step, `Restore.restore` on this pipeline's archive, sinks and cache.
   */
  readonly restoreFromArchive: (
    range: Archive.Range,
    options?: Restore.RestoreOptions
  ) => Effect.Effect<Restore.RestoreResult, Archive.ArchiveError>
  readonly stream: MemoryStream.Service
  readonly queue: MemoryQueue.Handle
  readonly deadLetterQueue: MemoryQueue.Handle
  readonly index: MemoryIndex.Handle
  readonly failures: MemoryFailureDestination.Service
  readonly processor: KinesisEventSource.EventSource
  readonly redriver: SqsEventSource.Handle
  readonly cache: DedupCache.Service
  readonly archive: MemoryArchive.Handle
  /** The Firehose backup into `archive`; `undefined` when `backup: false`. */
  readonly backup: FirehoseDelivery.Delivery | undefined
  /**
   * Nothing in flight anywhere: every shard read to its tip by the processor and the backup, and
   * the fallback queue empty. The backup may still buffer records: `backup.flush` delivers them.
   */
  readonly isIdle: Effect.Effect<boolean>
}

export const make = (
  options: Options = {}
): Effect.Effect<Pipeline, KinesisEventSource.InvalidConfig | FirehoseDelivery.InvalidConfig, Scope.Scope> =>
  Effect.gen(function* () {
    const stream = yield* MemoryStream.make(options.stream)
    const deadLetterQueue = yield* MemoryQueue.make({ ...options.queue, queueName: "fallback-dlq" })
    const queue = yield* MemoryQueue.make({
      queueName: "fallback",
      ...options.queue,
      redrivePolicy: { maxReceiveCount: options.maxReceiveCount ?? 1000, deadLetterQueue }
    })
    const index = yield* MemoryIndex.make(options.index)
    const failures = yield* MemoryFailureDestination.make
    const cache = DedupCache.make({ capacity: 1_000_000, ...options.dedup })
    const sink =
      options.extraSinks !== undefined && options.extraSinks.length > 0
        ? DocumentSink.fanOut([index.sink, ...options.extraSinks])
        : index.sink

    const archive = yield* MemoryArchive.make(options.archive)
    const streamLayer = Layer.succeed(RecordStream.RecordStream, stream)
    const queueLayer = Layer.succeed(FallbackQueue.FallbackQueue, queue)
    const cacheAndSink = Layer.mergeAll(
      Layer.succeed(DedupCache.DedupCache, cache),
      Layer.succeed(DocumentSink.DocumentSink, sink)
    )
    const archiveLayer = Layer.succeed(Archive.Archive, archive)
    const layers: Layers = {
      collector: Layer.mergeAll(
        Layer.succeed(ApiKeys.ApiKeys, ApiKeys.make((options.apiKeys ?? defaultApiKeys).map(hashed))),
        streamLayer,
        queueLayer
      ),
      redriver: Layer.merge(streamLayer, queueLayer),
      processor: cacheAndSink,
      failureReprocessor: Layer.merge(streamLayer, cacheAndSink),
      backupReplayer: Layer.merge(archiveLayer, streamLayer),
      restore: Layer.merge(archiveLayer, cacheAndSink)
    }
    // Built once, as a function's runtime is: every invocation is given the same services.
    const collector = yield* Layer.build(layers.collector)
    const processorServices = yield* Layer.build(layers.processor)
    const redriverServices = yield* Layer.build(layers.redriver)
    const failureReprocessor = yield* Layer.build(layers.failureReprocessor)
    const restoreServices = yield* Layer.build(layers.restore)

    const processorConfig = { ...recommendedProcessorConfig, ...options.processor, onFailure: failures }
    const processor = yield* KinesisEventSource.start(
      stream,
      Process.kinesisHandler(processorConfig),
      processorConfig
    ).pipe(Effect.provide(processorServices))
    const redriver = yield* SqsEventSource.start(
      queue,
      (event) => Redrive.redriveSqsEvent(event, options.collect ?? {}),
      { reportBatchItemFailures: true, ...options.redriver }
    ).pipe(Effect.provide(redriverServices))

    const backup =
      options.backup === false
        ? undefined
        : yield* FirehoseDelivery.start(stream, archive, options.backup ?? defaultBackupConfig)

    return {
      layers,
      collect: (apiKey, body) => Effect.provide(Collect.collect(apiKey, body, options.collect), collector),
      replayFailures: Effect.flatMap(failures.records, (records) =>
        Effect.provide(Replay.replay(records), failureReprocessor)
      ),
      restoreFromArchive: (range, restoreOptions) =>
        Effect.provide(Restore.restore(range, restoreOptions), restoreServices),
      stream,
      queue,
      deadLetterQueue,
      index,
      failures,
      processor,
      redriver,
      cache,
      archive,
      backup,
      isIdle: Effect.all([
        processor.isIdle,
        redriver.idle,
        backup === undefined ? Effect.succeed(true) : backup.isCaughtUp
      ]).pipe(Effect.map((idle) => idle.every(Boolean)))
    }
  })

const hashed = (k: { readonly tenant: string; readonly key: string }): ApiKeys.HashedKey => ({
  tenant: k.tenant,
  sha256: ApiKeys.hashKey(k.key)
})

/** The whole memory world as one service, for programs and tests that take it from a layer. */
export class MemoryPipeline extends Context.Service<MemoryPipeline, Pipeline>()(
  "spillway/memory/MemoryPipeline"
) {}

/** `make` as a layer: the pipeline runs, polling and delivering, while the layer's scope is open. */
export const layer = (
  options: Options = {}
): Layer.Layer<MemoryPipeline, KinesisEventSource.InvalidConfig | FirehoseDelivery.InvalidConfig> =>
  Layer.effect(MemoryPipeline, make(options))
