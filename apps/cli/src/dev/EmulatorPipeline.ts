/**
 * The pipeline of `spillway dev --backend emulators`: the AWS layers against kinesalite and fauxqs
 * started in-process (`Emulators.start`), so the collector and redriver go through the real SDK
 * calls, errors and limits. The index stays `MemoryIndex` (no OpenSearch emulator exists).
 *
 * Lambda's mappings are emulated:
 * - processor: the same Kinesis event source mapping emulation as memory mode
 *   (`KinesisEventSource`, with `MemoryPipeline.recommendedProcessorConfig`: bisect on function
 *   error, partial batch response, 3 retries), polling kinesalite through `KinesisShardSource`
 *   (GetShardIterator + GetRecords). A batch it gives up on becomes an `OnFailureRecord` in an SQS
 *   on-failure queue on fauxqs (`SqsFailureDestination`), as the deployed mapping writes it, so a
 *   poison record costs one record, not its shard;
 * - redriver: receive (10) → `Redrive.redrive` → delete what was stored or re-parked; failed
 *   messages stay and come back after the visibility timeout, as with the SQS mapping.
 *
 * The backup is memory mode's too: the Firehose emulation (`FirehoseDelivery`, with
 * `MemoryPipeline.defaultBackupConfig`) reads the same shards through the same `KinesisShardSource`
 * and delivers objects in Firehose's layout to an S3 bucket on fauxqs (`FirehoseArchive`), so the
 * summary reads the backup back through the S3 API.
 *
 * Idle (for the drain): every shard's checkpoint is at the shard's tip as Kinesis reports it now
 * (read ahead by `KinesisShardSource.shardTips`), for the processor and the backup alike, no batch
 * is being processed, and the fallback queue holds no message (visible, in flight or delayed). The
 * backup may still buffer records then: `backup.flush` delivers them.
 */
import { CreateQueueCommand, GetQueueAttributesCommand } from "@aws-sdk/client-sqs"
import {
  FirehoseArchive,
  KinesisClient,
  KinesisRecordStream,
  KinesisShardSource,
  S3Client,
  SqsClient,
  SqsFailureDestination,
  SqsFallbackQueue
} from "@spillway/aws"
import {
  ApiKeys,
  type Archive,
  DedupCache,
  DocumentSink,
  FallbackQueue,
  Process,
  RecordStream,
  Redrive
} from "@spillway/core"
import { Emulators } from "@spillway/emulators"
import { FirehoseDelivery, KinesisEventSource, MemoryIndex, MemoryPipeline } from "@spillway/memory"
import { Effect, Layer, type Scope } from "effect"

export interface Options {
  readonly emulators?: Emulators.Options
  /**
   * Overrides of the processor mapping (the on-failure destination is always the emulated queue).
   * @default MemoryPipeline.recommendedProcessorConfig
   */
  readonly processor?: Partial<Omit<KinesisEventSource.Config, "onFailure">>
  /** The collector's keys. @default `MemoryPipeline.defaultApiKeys` */
  readonly apiKeys?: ReadonlyArray<{ readonly tenant: string; readonly key: string }>
}

export interface QueueStats {
  readonly visible: number
  readonly inFlight: number
  readonly delayed: number
  readonly total: number
}

/** The functions' layers over the emulators (as `AwsPipeline` builds them over AWS). */
export interface Layers {
  readonly collector: Layer.Layer<ApiKeys.ApiKeys | RecordStream.RecordStream | FallbackQueue.FallbackQueue>
  readonly redriver: Layer.Layer<RecordStream.RecordStream | FallbackQueue.FallbackQueue>
  readonly processor: Layer.Layer<DedupCache.DedupCache | DocumentSink.DocumentSink>
}

export interface Pipeline {
  readonly layers: Layers
  readonly emulators: Emulators.Running
  readonly stream: RecordStream.Service
  readonly queue: FallbackQueue.Service & { readonly stats: Effect.Effect<QueueStats> }
  readonly index: MemoryIndex.Handle
  readonly processor: KinesisEventSource.EventSource
  /** The fauxqs queue receiving an `OnFailureRecord` (JSON body) for every batch the processor discarded. */
  readonly failureQueueUrl: string
  /** The backup bucket on fauxqs (`emulators.archiveBucket`), in Firehose's layout. */
  readonly archive: Archive.Service
  /** The Firehose backup of the stream into `archive`. */
  readonly backup: FirehoseDelivery.Delivery
  readonly isIdle: Effect.Effect<boolean>
}

const pollInterval = "1 second"

export const make = (
  options: Options = {}
): Effect.Effect<
  Pipeline,
  | Emulators.EmulatorError
  | FallbackQueue.FallbackQueueError
  | KinesisEventSource.InvalidConfig
  | FirehoseDelivery.InvalidConfig,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const emulators = yield* Emulators.start(options.emulators)
    const kinesis = yield* KinesisClient.make(emulators.kinesis)
    const sqs = yield* SqsClient.make(emulators.sqs)
    const awsStream = yield* KinesisRecordStream.make({
      streamName: emulators.streamName,
      streamArn: emulators.streamArn
    }).pipe(Effect.provideService(KinesisClient.KinesisClient, kinesis))
    const awsQueue = yield* SqsFallbackQueue.make({
      queueUrl: emulators.queueUrl,
      queueArn: emulators.queueArn
    }).pipe(Effect.provideService(SqsClient.SqsClient, sqs))
    const index = yield* MemoryIndex.make()
    const cache = DedupCache.make({ capacity: 1_000_000 })

    const queueStats = Effect.tryPromise(() =>
      sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: emulators.queueUrl,
          AttributeNames: [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"
          ]
        })
      )
    ).pipe(
      Effect.map(({ Attributes: a = {} }): QueueStats => {
        const visible = Number(a.ApproximateNumberOfMessages ?? 0)
        const inFlight = Number(a.ApproximateNumberOfMessagesNotVisible ?? 0)
        const delayed = Number(a.ApproximateNumberOfMessagesDelayed ?? 0)
        return { visible, inFlight, delayed, total: visible + inFlight + delayed }
      }),
      // An unanswered stats call must not read as "empty": that would end the drain early.
      Effect.orElseSucceed(() => ({ visible: 0, inFlight: 0, delayed: 0, total: Number.POSITIVE_INFINITY }))
    )

    const streamLayer = Layer.succeed(RecordStream.RecordStream, awsStream)
    const queueLayer = Layer.succeed(FallbackQueue.FallbackQueue, awsQueue)
    const keys = (options.apiKeys ?? MemoryPipeline.defaultApiKeys).map((k) => ({
      tenant: k.tenant,
      sha256: ApiKeys.hashKey(k.key)
    }))
    const layers: Layers = {
      collector: Layer.mergeAll(ApiKeys.layer(keys), streamLayer, queueLayer),
      redriver: Layer.merge(streamLayer, queueLayer),
      // The index stays in memory: no OpenSearch runs here.
      processor: Layer.merge(
        Layer.succeed(DocumentSink.DocumentSink, index.sink),
        Layer.succeed(DedupCache.DedupCache, cache)
      )
    }
    // Built once each, as a function's runtime is.
    const processorServices = yield* Layer.build(layers.processor)
    const redriverServices = yield* Layer.build(layers.redriver)

    // --- processor: the event source mapping emulation memory mode runs, over the Kinesis API ---
    // One reader per consumer, as in AWS: a `KinesisShardSource` keeps one iterator per shard, so
    // the processor and Firehose each get their own and never make the other re-fetch iterators.
    const shardReader = KinesisShardSource.make({
      streamName: emulators.streamName,
      streamArn: emulators.streamArn
    }).pipe(
      Effect.provideService(KinesisClient.KinesisClient, kinesis),
      Effect.mapError((e) => new Emulators.EmulatorError({ message: `cannot list shards: ${e.message}` }))
    )
    const shardSource = yield* shardReader
    const failureQueueUrl = yield* Effect.tryPromise({
      try: () => sqs.send(new CreateQueueCommand({ QueueName: `${emulators.streamName}-on-failure` })),
      catch: (cause) =>
        new Emulators.EmulatorError({ message: `cannot create the on-failure queue: ${String(cause)}` })
    }).pipe(
      Effect.flatMap((output) =>
        output.QueueUrl === undefined
          ? Effect.fail(new Emulators.EmulatorError({ message: "CreateQueue returned no queue URL" }))
          : Effect.succeed(output.QueueUrl)
      )
    )
    const onFailure = yield* SqsFailureDestination.make({ queueUrl: failureQueueUrl }).pipe(
      Effect.provideService(SqsClient.SqsClient, sqs)
    )
    const processorConfig: KinesisEventSource.Config = {
      ...MemoryPipeline.recommendedProcessorConfig,
      ...options.processor,
      onFailure
    }
    const processor = yield* KinesisEventSource.start(
      shardSource,
      Process.kinesisHandler(processorConfig),
      processorConfig
    ).pipe(Effect.provide(processorServices))

    // --- backup: Firehose's own read of the stream, delivered to the bucket on fauxqs ----------
    const s3 = yield* S3Client.make(emulators.s3)
    const archive = yield* FirehoseArchive.make({
      bucket: emulators.archiveBucket,
      deliveryStreamName: `${emulators.streamName}-backup`
    }).pipe(Effect.provideService(S3Client.S3Client, s3))
    const backup = yield* FirehoseDelivery.start(
      yield* shardReader,
      archive,
      MemoryPipeline.defaultBackupConfig
    )

    // --- redriver: the SQS mapping on the fallback queue ---------------------------------------
    const redriveOnce = Effect.gen(function* () {
      const messages = yield* awsQueue.receive({ maxMessages: 10 })
      if (messages.length === 0) return false
      const result = yield* Effect.provide(Redrive.redrive(messages), redriverServices)
      const failed = new Set(result.failed.map((f) => f.messageId))
      for (const f of result.failed) yield* Effect.logWarning(`redriver: ${f.messageId} kept: ${f.reason}`)
      yield* Effect.forEach(
        messages.filter((m) => !failed.has(m.messageId)),
        (m) => awsQueue.delete(m.receiptHandle),
        { concurrency: 10, discard: true }
      )
      return true
    }).pipe(Effect.catch((error) => Effect.as(Effect.logWarning(`redriver: ${error.message}`), false)))
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(redriveOnce, (gotSome) => (gotSome ? Effect.void : Effect.sleep(pollInterval)))
      )
    )

    return {
      layers,
      emulators,
      stream: awsStream,
      queue: { ...awsQueue, stats: queueStats },
      index,
      processor,
      failureQueueUrl,
      archive,
      backup,
      // Upstream first: a fallback message is deleted only after its records are in the stream, so
      // a queue seen empty followed by a stream seen read to its tip misses nothing in between.
      isIdle: Effect.gen(function* () {
        if ((yield* queueStats).total > 0) return false
        if (!(yield* processor.isIdle)) return false
        return yield* backup.isCaughtUp
      })
    }
  })
