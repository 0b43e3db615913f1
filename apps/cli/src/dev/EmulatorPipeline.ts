/**
 * The pipeline of `spillway dev --backend emulators`: the AWS layers against kinesalite and fauxqs
 * started in-process (`Emulators.start`) and a real OpenSearch node, so the collector, the redriver
 * and the processor's writes go through the real SDK and `_bulk` calls, errors and limits.
 *
 * The index is OpenSearch itself, through `OpenSearchSink`: daily indices `<alias>-yyyy.MM.dd`
 * behind the alias (`spillway-dev` by default), its index template put before the first write,
 * no replicas (one node). The node is either started for the pipeline's scope
 * (`OpenSearchNode.start`: OpenSearch 2.19.6 fetched once through Maven into a cache, run on Java
 * 17 on 127.0.0.1, stopped when the scope closes) or an existing one given by URL (plain HTTP,
 * unsigned; checked to answer before anything else starts). What the summary and the drain read
 * back from it goes through `IndexReader.fromOpenSearch`: searches on the alias, kept to the
 * documents this run wrote.
 *
 * Lambda's mappings are emulated:
 * - processor: the same Kinesis event source mapping emulation as memory mode
 *   (`KinesisEventSource`, with `MemoryPipeline.recommendedProcessorConfig`: bisect on function
 *   error, partial batch response, 3 retries), polling kinesalite through `KinesisShardSource`
 *   (GetShardIterator + GetRecords). A batch it gives up on becomes an `OnFailureRecord` in an SQS
 *   on-failure queue on fauxqs (`SqsFailureDestination`), as the deployed mapping writes it, so a
 *   poison record (one OpenSearch refuses, such as a string in a field mapped as a number) costs
 *   one record, not its shard;
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
 * is being processed, and the fallback queue holds no message (visible, in flight or delayed). A
 * processed batch is in OpenSearch (acknowledged by `_bulk`), searchable after the next refresh.
 * The backup may still buffer records then: `backup.flush` delivers them.
 */
import { CreateQueueCommand, GetQueueAttributesCommand } from "@aws-sdk/client-sqs"
import {
  FirehoseArchive,
  IndexLayout,
  KinesisClient,
  KinesisRecordStream,
  KinesisShardSource,
  OpenSearchClient,
  OpenSearchSink,
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
import { Emulators, OpenSearchNode } from "@spillway/emulators"
import { FirehoseDelivery, KinesisEventSource, MemoryPipeline } from "@spillway/memory"
import { Clock, Effect, Layer, type Scope } from "effect"
import type { ChildProcessSpawner } from "effect/process"
import * as IndexReader from "./IndexReader.js"

export interface Options {
  readonly emulators?: Emulators.Options
  /**
   * Overrides of the processor mapping (the on-failure destination is always the emulated queue).
   * @default MemoryPipeline.recommendedProcessorConfig
   */
  readonly processor?: Partial<Omit<KinesisEventSource.Config, "onFailure">>
  /** The collector's keys. @default `MemoryPipeline.defaultApiKeys` */
  readonly apiKeys?: ReadonlyArray<{ readonly tenant: string; readonly key: string }>
  /** The OpenSearch the processor writes to. @default a node started for the pipeline, alias `spillway-dev` */
  readonly opensearch?: OpenSearchOptions
}

export interface OpenSearchOptions {
  /**
   * An existing node's URL (plain HTTP, unsigned requests). Absent: a node is started with
   * `OpenSearchNode.start` and stopped when the pipeline's scope closes.
   */
  readonly url?: string | undefined
  /** Options of the node started when `url` is absent. */
  readonly node?: OpenSearchNode.Options
  /** The alias the daily indices `<alias>-yyyy.MM.dd` join. @default "spillway-dev" */
  readonly alias?: string | undefined
}

export const defaultAlias = "spillway-dev"

/** The OpenSearch the pipeline indexes into. */
export interface OpenSearch {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly url: string
  /** The engine's version, as the node reports it. */
  readonly version: string
  readonly alias: string
  /** Whether the node was started for this pipeline (and stops with it). */
  readonly started: boolean
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
  readonly opensearch: OpenSearch
  /** Reads back what this pipeline wrote to OpenSearch (count, ids). */
  readonly indexed: IndexReader.IndexReader
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

/** The node given by URL, or one started for the scope (and stopped when it closes). */
const openSearchNode = (
  options: OpenSearchOptions
): Effect.Effect<
  { readonly url: string; readonly started: boolean },
  Emulators.EmulatorError,
  Scope.Scope | ChildProcessSpawner.ChildProcessSpawner
> =>
  options.url === undefined
    ? Effect.map(OpenSearchNode.start(options.node), (node) => ({ url: node.url, started: true }))
    : Effect.succeed({ url: options.url.replace(/\/+$/, ""), started: false })

export const make = (
  options: Options = {}
): Effect.Effect<
  Pipeline,
  | Emulators.EmulatorError
  | FallbackQueue.FallbackQueueError
  | KinesisEventSource.InvalidConfig
  | FirehoseDelivery.InvalidConfig,
  Scope.Scope | ChildProcessSpawner.ChildProcessSpawner
> =>
  Effect.gen(function* () {
    // The alias first: a name OpenSearch would refuse is an input error, found before anything starts.
    const alias = options.opensearch?.alias ?? defaultAlias
    const layout = yield* Effect.try({
      try: () => IndexLayout.make({ alias, replicas: 0 }),
      catch: (cause) =>
        new Emulators.EmulatorError({
          message: cause instanceof Error ? cause.message : String(cause),
          cause
        })
    })
    const node = yield* openSearchNode(options.opensearch ?? {})
    const client = yield* OpenSearchClient.make({ node: node.url, region: Emulators.region, auth: "none" })
    const version = yield* client.request({ method: "GET", path: "/" }).pipe(
      Effect.mapError(
        (cause) =>
          new Emulators.EmulatorError({
            message: `OpenSearch at ${node.url} does not answer: ${cause.message}${
              node.started ? "" : " (is it running, on plain HTTP without the security plugin?)"
            }`,
            cause
          })
      ),
      Effect.map((answer) => {
        const number = (answer.body as { version?: { number?: unknown } } | undefined)?.version?.number
        return typeof number === "string" ? number : "unknown"
      })
    )
    const since = yield* Clock.currentTimeMillis
    const sink = yield* OpenSearchSink.make({ layout }).pipe(
      Effect.provideService(OpenSearchClient.OpenSearchClient, client)
    )

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
      processor: Layer.merge(
        Layer.succeed(DocumentSink.DocumentSink, sink),
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
      opensearch: { url: node.url, version, alias, started: node.started },
      indexed: IndexReader.fromOpenSearch(client, { alias, since }),
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
