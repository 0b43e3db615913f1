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
import { Context, Effect, type Scope } from "effect"
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

export interface Pipeline {
  readonly collect: (
    apiKey: string | undefined,
    body: unknown
  ) => Effect.Effect<Collect.CollectResult, ApiKeys.Unauthorized | Collect.InvalidBody>
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

    const context = Context.empty().pipe(
      Context.add(RecordStream.RecordStream, stream),
      Context.add(FallbackQueue.FallbackQueue, queue),
      Context.add(DocumentSink.DocumentSink, sink),
      Context.add(DedupCache.DedupCache, cache),
      Context.add(ApiKeys.ApiKeys, ApiKeys.make((options.apiKeys ?? defaultApiKeys).map(hashed)))
    )

    const processorConfig = { ...recommendedProcessorConfig, ...options.processor, onFailure: failures }
    // Without partial batch response the handler must fail the invocation, or Lambda would take
    // the batch as done and move past records that were never written.
    const processor = yield* KinesisEventSource.start(
      stream,
      processorConfig.reportBatchItemFailures === true
        ? (event) => Effect.provide(Process.processKinesisEvent(event), context)
        : (event) => Effect.provide(Process.processKinesisEventOrFail(event), context),
      processorConfig
    )
    const redriver = yield* SqsEventSource.start(
      queue,
      (event) => Effect.provide(Redrive.redriveSqsEvent(event, options.collect ?? {}), context),
      { reportBatchItemFailures: true, ...options.redriver }
    )

    const archive = yield* MemoryArchive.make(options.archive)
    const backup =
      options.backup === false
        ? undefined
        : yield* FirehoseDelivery.start(stream, archive, options.backup ?? defaultBackupConfig)

    return {
      collect: (apiKey, body) => Effect.provide(Collect.collect(apiKey, body, options.collect), context),
      replayFailures: Effect.flatMap(failures.records, (records) =>
        Effect.provide(Replay.replay(records), context)
      ),
      restoreFromArchive: (range, restoreOptions) =>
        Restore.restore(range, restoreOptions).pipe(
          Effect.provide(context),
          Effect.provideService(Archive.Archive, archive)
        ),
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
