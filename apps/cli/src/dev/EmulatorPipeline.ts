/**
 * The pipeline of `spillway dev --backend emulators`: the AWS layers against kinesalite and fauxqs
 * started in-process (`Emulators.start`), so the collector and redriver go through the real SDK
 * calls, errors and limits. The index stays `MemoryIndex` (no OpenSearch emulator exists).
 *
 * Lambda's mappings are emulated with the smallest faithful loops:
 * - processor: one poller per shard (ListShards once; no resharding in a local run) reading from
 *   the trim horizon with GetRecords, at once while a page comes back full and once per second
 *   otherwise (Lambda's per-shard cadence). Each page goes to `Process.processKinesisEvent` in
 *   batches of `batchSize`, in order; a partial batch response is retried from its lowest failed
 *   sequence number (what Lambda does with `ReportBatchItemFailures`), at most
 *   `maximumRetryAttempts` times, after which the rest of the batch is discarded and counted.
 *   A failed GetRecords (throttling, expired iterator) renews the iterator after the last record
 *   handled, so nothing is skipped or read twice.
 * - redriver: receive (10) → `Redrive.redrive` → delete what was stored or re-parked; failed
 *   messages stay and come back after the visibility timeout, as with the SQS mapping.
 *
 * Idle (for the drain) is exact rather than sampled: every record the stream stored (counted on
 * the way in) has been read by a poller, no batch is being processed, and the fallback queue holds
 * no message (visible, in flight or delayed).
 */
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
  ListShardsCommand
} from "@aws-sdk/client-kinesis"
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs"
import { KinesisClient, KinesisRecordStream, SqsClient, SqsFallbackQueue } from "@spillway/aws"
import * as Emulators from "@spillway/aws/Emulators"
import {
  DedupCache,
  DocumentSink,
  FallbackQueue,
  LambdaEvents,
  Process,
  RecordStream,
  Redrive
} from "@spillway/core"
import { MemoryIndex } from "@spillway/memory"
import { Context, Effect, Ref, type Scope } from "effect"

export interface Options {
  readonly emulators?: Emulators.Options
  /** Records per processor invocation. @default 500 (Spillway's recommended mapping) */
  readonly batchSize?: number
  /** @default 3 */
  readonly maximumRetryAttempts?: number
}

export interface ProcessorCounters {
  readonly invocations: number
  readonly partialFailures: number
  readonly retries: number
  readonly recordsDiscarded: number
}

export interface QueueStats {
  readonly visible: number
  readonly inFlight: number
  readonly delayed: number
  readonly total: number
}

export interface Pipeline {
  readonly emulators: Emulators.Running
  readonly stream: RecordStream.Service
  readonly queue: FallbackQueue.Service & { readonly stats: Effect.Effect<QueueStats> }
  readonly index: MemoryIndex.Handle
  readonly processor: { readonly counters: Effect.Effect<ProcessorCounters> }
  readonly isIdle: Effect.Effect<boolean>
}

/** The role ARN Lambda would name in events; no IAM exists here. */
const roleArn = "arn:aws:iam::000000000000:role/spillway-dev-processor"

const pollInterval = "1 second"

export const make = (
  options: Options = {}
): Effect.Effect<Pipeline, Emulators.EmulatorError | FallbackQueue.FallbackQueueError, Scope.Scope> =>
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

    // Counted on the way in so that idleness compares with what the stream really holds.
    const stored = yield* Ref.make(0)
    const stream: RecordStream.Service = {
      ...awsStream,
      putRecords: (entries) =>
        awsStream
          .putRecords(entries)
          .pipe(
            Effect.tap((outcomes) =>
              Ref.update(stored, (n) => n + outcomes.filter((o) => o._tag === "Stored").length)
            )
          )
    }

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

    const context = Context.empty().pipe(
      Context.add(RecordStream.RecordStream, stream),
      Context.add(FallbackQueue.FallbackQueue, awsQueue),
      Context.add(DocumentSink.DocumentSink, index.sink),
      Context.add(DedupCache.DedupCache, cache)
    )

    // --- processor: one poller per shard -------------------------------------------------------
    const batchSize = options.batchSize ?? 500
    const maximumRetryAttempts = options.maximumRetryAttempts ?? 3
    const read = yield* Ref.make(0)
    const busy = yield* Ref.make(0)
    const counters = yield* Ref.make<ProcessorCounters>({
      invocations: 0,
      partialFailures: 0,
      retries: 0,
      recordsDiscarded: 0
    })
    const count = (f: (c: ProcessorCounters) => ProcessorCounters) => Ref.update(counters, f)

    /** Processes one batch, retrying from the lowest failed record; never fails. */
    const handle = Effect.fn("EmulatorPipeline.handle")(function* (
      batch: ReadonlyArray<RecordStream.StreamRecord>
    ) {
      let pending = batch
      let attempt = 0
      while (pending.length > 0) {
        const event = {
          Records: pending.map((r) =>
            LambdaEvents.fromStreamRecord(r, {
              streamArn: emulators.streamArn,
              region: emulators.region,
              roleArn
            })
          )
        }
        yield* count((c) => ({ ...c, invocations: c.invocations + 1 }))
        const response = yield* Effect.provide(Process.processKinesisEvent(event), context)
        const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier))
        if (failed.size === 0) return
        yield* count((c) => ({ ...c, partialFailures: c.partialFailures + 1 }))
        const from = pending.findIndex((r) => failed.has(r.sequenceNumber))
        // An identifier naming no record of the batch: Lambda retries the whole batch.
        pending = from < 0 ? pending : pending.slice(from)
        if (attempt >= maximumRetryAttempts) {
          yield* count((c) => ({ ...c, recordsDiscarded: c.recordsDiscarded + pending.length }))
          yield* Effect.logWarning(
            `processor: discarded ${pending.length} records of ${pending[0]?.shardId} after ${attempt} retries`
          )
          return
        }
        attempt++
        yield* count((c) => ({ ...c, retries: c.retries + 1 }))
        yield* Effect.sleep(pollInterval)
      }
    })

    const iteratorAfter = (shardId: string, lastSequenceNumber: string | undefined) => {
      const input: GetShardIteratorCommandInput =
        lastSequenceNumber === undefined
          ? { StreamName: emulators.streamName, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" }
          : {
              StreamName: emulators.streamName,
              ShardId: shardId,
              ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
              StartingSequenceNumber: lastSequenceNumber
            }
      return Effect.tryPromise(() => kinesis.send(new GetShardIteratorCommand(input))).pipe(
        Effect.map((o) => o.ShardIterator)
      )
    }

    const pollShard = (shardId: string) =>
      Effect.gen(function* () {
        let last: string | undefined
        let iterator: string | undefined
        while (true) {
          const page = yield* Effect.gen(function* () {
            if (iterator === undefined) iterator = yield* iteratorAfter(shardId, last)
            if (iterator === undefined) return { records: [], full: false }
            const current = iterator
            const output = yield* Effect.tryPromise(() =>
              kinesis.send(new GetRecordsCommand({ ShardIterator: current, Limit: 10_000 }))
            )
            iterator = output.NextShardIterator
            const records = (output.Records ?? []).map(
              (r): RecordStream.StreamRecord => ({
                shardId,
                sequenceNumber: r.SequenceNumber ?? "",
                partitionKey: r.PartitionKey ?? "",
                data: r.Data ?? new Uint8Array(),
                approximateArrivalTimestamp: r.ApproximateArrivalTimestamp?.getTime() ?? 0
              })
            )
            return { records, full: (output.MillisBehindLatest ?? 0) > 0 && records.length > 0 }
          }).pipe(
            Effect.catchAll((error) =>
              Effect.logWarning(
                `processor: reading ${shardId} failed, renewing the iterator: ${String(error)}`
              ).pipe(
                Effect.as({ records: [] as ReadonlyArray<RecordStream.StreamRecord>, full: false }),
                Effect.zipLeft(
                  Effect.sync(() => {
                    iterator = undefined
                  })
                )
              )
            )
          )
          if (page.records.length > 0) {
            yield* Ref.update(busy, (n) => n + 1)
            yield* Ref.update(read, (n) => n + page.records.length)
            for (let i = 0; i < page.records.length; i += batchSize) {
              yield* handle(page.records.slice(i, i + batchSize))
            }
            last = page.records[page.records.length - 1]?.sequenceNumber
            yield* Ref.update(busy, (n) => n - 1)
          }
          if (!page.full) yield* Effect.sleep(pollInterval)
        }
      })

    const shards = yield* Effect.tryPromise({
      try: () => kinesis.send(new ListShardsCommand({ StreamName: emulators.streamName })),
      catch: (cause) => new Emulators.EmulatorError({ message: `cannot list shards: ${String(cause)}` })
    })
    for (const shard of shards.Shards ?? []) {
      if (shard.ShardId !== undefined) yield* Effect.forkScoped(pollShard(shard.ShardId))
    }

    // --- redriver: the SQS mapping on the fallback queue ---------------------------------------
    const redriveOnce = Effect.gen(function* () {
      const messages = yield* awsQueue.receive({ maxMessages: 10 })
      if (messages.length === 0) return false
      const result = yield* Effect.provide(Redrive.redrive(messages), context)
      const failed = new Set(result.failed.map((f) => f.messageId))
      for (const f of result.failed) yield* Effect.logWarning(`redriver: ${f.messageId} kept: ${f.reason}`)
      yield* Effect.forEach(
        messages.filter((m) => !failed.has(m.messageId)),
        (m) => awsQueue.delete(m.receiptHandle),
        { concurrency: 10, discard: true }
      )
      return true
    }).pipe(Effect.catchAll((error) => Effect.as(Effect.logWarning(`redriver: ${error.message}`), false)))
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(redriveOnce, (gotSome) => (gotSome ? Effect.void : Effect.sleep(pollInterval)))
      )
    )

    return {
      emulators,
      stream,
      queue: { ...awsQueue, stats: queueStats },
      index,
      processor: { counters: Ref.get(counters) },
      isIdle: Effect.gen(function* () {
        if ((yield* Ref.get(busy)) > 0) return false
        if ((yield* Ref.get(read)) < (yield* Ref.get(stored))) return false
        return (yield* queueStats).total === 0
      })
    }
  })
