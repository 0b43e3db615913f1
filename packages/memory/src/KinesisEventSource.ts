/**
 * An emulation of Lambda's Kinesis event source mapping (ESM) over a `MemoryStream`: it polls every
 * shard, builds Kinesis events, invokes a handler and reacts to its outcome the way Lambda does
 * (docs/aws-behaviour.md §2.1–§2.4 and §2.6), so that a processor's failure handling can be tested end to end
 * without AWS.
 *
 * Guarantees:
 * - one batch in flight per shard and lane: `parallelizationFactor` (1–10) lanes per shard, a record
 *   going to the lane of its partition key, each lane with its own batch in flight and its own
 *   checkpoint (the per-lane loop of §2.3); records of one partition key reach the handler in
 *   sequence order, and a lane is blocked while its batch is retried, the shard's other lanes
 *   are not. With the default factor of 1 the shard is one lane: records in sequence order, the
 *   shard blocked while its batch is retried;
 * - a batch is flushed when it reaches `batchSize`, when the batching window elapses, or when one
 *   more record would push the event over Lambda's 6 MB synchronous payload limit;
 * - errors follow the algorithm of §2.3: bisection on function error (without consuming
 *   retry attempts), partial batch responses (§2.4), retry and age limits, and an `OnFailureRecord`
 *   (§2.6) for every discarded batch before the checkpoint moves past it;
 * - two consumer types, as Lambda offers them (§2.2): the standard iterator polls each shard with
 *   GetRecords once per `pollIntervalMillis` ("a base rate of once per second"), at once again
 *   after a full batch; an enhanced fan-out consumer (`consumer: "enhancedFanOut"`) is pushed
 *   each record by the stream (`ShardReader.FanOut`, `SubscribeToShard` over HTTP/2) about 70 ms
 *   after it was written, and invokes as soon as the shard's previous batch is done: no poll
 *   interval. Everything else (batching, one batch in flight per shard, errors) is the same.
 *
 * Choices where AWS documents nothing (§2.3 "not precisely documented"):
 * - both halves of a bisected batch inherit the attempt count of the batch they came from; each
 *   half then counts its own attempts;
 * - a partial batch response consumes one attempt even when it made progress (the ⚠ in §2.3);
 * - the record age is checked before every invocation, the first included: a batch whose oldest
 *   record is older than `maximumRecordAgeInSeconds`, or older than the stream's retention (the
 *   records are gone from the stream), is discarded with condition `RecordAgeExceeded` (LocalStack's
 *   name; docs/aws-behaviour.md §2.6);
 * - `approximateInvokeCount` counts the attempts made on the discarded records, so that it agrees
 *   with `condition`: every invocation of the batch in its final shape, plus those of the batches
 *   it is the remainder of (the records after a partial response were in that invocation, and it
 *   consumed an attempt), but not the invocation that bisected it (splitting consumes no attempt,
 *   §2.3). A batch given up on as `RetryAttemptsExhausted` therefore says `maximumRetryAttempts`
 *   + 1, never 0; one discarded for its age before any attempt says 0;
 * - a failed batch is retried after `retryDelayMillis` (default: the poll interval). Lambda retries
 *   promptly but not in a tight loop, and a delay makes the retries visible to `TestClock`;
 * - the on-failure record is resent while the destination answers with a retryable error (the shard
 *   stays blocked meanwhile); a non-retryable refusal is counted in `onFailureDropped` and the shard
 *   moves on, since resending the same record cannot succeed;
 * - a handler response that is not an object (a string, a number) is treated like an empty
 *   response: success;
 * - an enhanced fan-out consumer whose read fails (a stream outage) subscribes again after
 *   `pollIntervalMillis`;
 * - lanes (ParallelizationFactor > 1): Lambda does not say how it assigns partition keys to a
 *   shard's concurrent batches, only that order is kept per key. A record goes to lane
 *   FNV-1a(partition key) mod factor. Each lane reads the shard after its own checkpoint (pages
 *   of batch size × factor records, up to ten, skipping the other lanes' records) and polls on
 *   its own schedule; a lane's checkpoint is the position in the shard up to which all of its
 *   records are done, and the shard's checkpoint (`checkpoints`) is the lowest of its lanes'.
 *   Lambda reads a shard once and hands the records to its batches; here every lane reads for
 *   itself, so a shard sees up to `parallelizationFactor` times the GetRecords calls. The memory
 *   stream does not limit reads; over Kinesis (`KinesisShardSource`), keep the factor low.
 */
import {
  type FailureDestination,
  LambdaEvents,
  OnFailure,
  RecordStream,
  type ShardReader
} from "@spillway/core"
import { Clock, Data, Effect, Exit, Random, Schedule, type Scope } from "effect"

export type StartingPosition = "TRIM_HORIZON" | "LATEST"

/**
 * How records reach the mapping (§2.2): `"standard"`, a shared-throughput consumer that polls each
 * shard (GetRecords); `"enhancedFanOut"`, a registered stream consumer the stream pushes records
 * to (`SubscribeToShard`), with dedicated read throughput and no poll interval.
 */
export type ConsumerType = "standard" | "enhancedFanOut"

export interface Config {
  /** Where a shard without a checkpoint starts: the oldest retained record, or only new records. */
  readonly startingPosition: StartingPosition
  /** @default "standard". `"enhancedFanOut"` needs a stream that pushes (`ShardReader.FanOut`). */
  readonly consumer?: ConsumerType
  /** Maximum records per invocation, 1–10,000. @default 100 */
  readonly batchSize?: number
  /** How long to wait for a batch to fill, 0–300 s. @default 0 */
  readonly maximumBatchingWindowInSeconds?: number
  /** Lambda polls each shard about once per second; polling resumes at once after a full batch. @default 1000 */
  readonly pollIntervalMillis?: number
  /** Pause before a failed batch (or a bisected half) is invoked again. @default pollIntervalMillis */
  readonly retryDelayMillis?: number
  /** −1 (retry until the records expire) … 10,000. @default -1 */
  readonly maximumRetryAttempts?: number
  /** −1 (no limit) or 60 … 604,800. @default -1 */
  readonly maximumRecordAgeInSeconds?: number
  /** @default false */
  readonly bisectBatchOnFunctionError?: boolean
  /** `FunctionResponseTypes: ["ReportBatchItemFailures"]`. @default false */
  readonly reportBatchItemFailures?: boolean
  /** Concurrent batches per shard, 1–10; order is kept per partition key. @default 1 */
  readonly parallelizationFactor?: number
  /** @default "arn:aws:lambda:<stream region>:<stream account>:function:spillway-processor" */
  readonly functionArn?: string
  /** Written to `awsRegion` of each event record. @default the stream's region */
  readonly region?: string
  /** Written to `invokeIdentityArn` of each event record. @default "arn:aws:iam::<account>:role/spillway-processor" */
  readonly roleArn?: string
  /** Receives an `OnFailureRecord` for every discarded batch. @default none: discarded batches are only counted */
  readonly onFailure?: FailureDestination.Service
}

/** A configuration value outside the range the Lambda API accepts. */
export class InvalidConfig extends Data.TaggedError("InvalidEventSourceConfig")<{
  readonly option: string
  readonly message: string
}> {}

/**
 * The function under test. Its success value is the function's response (read as a partial batch
 * response when `reportBatchItemFailures` is on); a failure or a defect is a function error.
 */
export type Handler<R> = (event: LambdaEvents.KinesisEvent) => Effect.Effect<unknown, unknown, R>

export interface Counters {
  readonly invocations: number
  /** Invocations that failed or died ("Unhandled"). */
  readonly functionErrors: number
  /** Invocations answered with a valid partial batch response naming at least one record. */
  readonly partialFailures: number
  /** Partial batch responses with an invalid identifier, treated as complete failures. */
  readonly invalidResponses: number
  readonly bisections: number
  /** Invocations that redelivered records: retries, bisected halves, remainders after a partial response. */
  readonly retries: number
  readonly batchesDiscarded: number
  readonly recordsDiscarded: number
  readonly onFailureRecordsSent: number
  /** On-failure records refused with a non-retryable error and therefore lost. */
  readonly onFailureDropped: number
  /** Records handed to the handler, redeliveries included. */
  readonly recordsDelivered: number
  /** Records the checkpoint passed because the handler succeeded with them (each counted once). */
  readonly recordsSucceeded: number
  /** Polls that failed (stream outage); the poll is simply tried again. */
  readonly pollErrors: number
}

export interface EventSource {
  readonly functionArn: string
  /** Per shard, the sequence number of the last record done with; `undefined` before the first one. */
  readonly checkpoints: Effect.Effect<Readonly<Record<string, string | undefined>>>
  readonly counters: Effect.Effect<Counters>
  /** No batch is being collected or processed, and every checkpoint is at its shard's tip. */
  readonly isIdle: Effect.Effect<boolean>
}

/** Lambda's synchronous invocation payload limit (6 MB), which caps the size of one event. */
export const maxPayloadBytes = 6_291_456

export type ResponseVerdict =
  | { readonly _tag: "Success" }
  | { readonly _tag: "Partial"; readonly index: number }
  | { readonly _tag: "Invalid"; readonly reason: string }

const success: ResponseVerdict = { _tag: "Success" }

/**
 * Reads a handler's response as a partial batch response (§2.4): `index` is the position in `batch`
 * of the lowest failed sequence number. Empty, `null` or missing lists mean success; an entry
 * without `itemIdentifier` (a misspelled key), an empty or non-string identifier, or one that names
 * no record of the batch makes the whole batch fail.
 */
export const interpretResponse = (
  response: unknown,
  batch: ReadonlyArray<{ readonly sequenceNumber: string }>
): ResponseVerdict => {
  if (response === null || typeof response !== "object" || !("batchItemFailures" in response)) return success
  const failures: unknown = response.batchItemFailures
  if (failures === null || failures === undefined) return success
  if (!Array.isArray(failures)) return { _tag: "Invalid", reason: "batchItemFailures is not a list" }
  if (failures.length === 0) return success
  const positions = new Map(batch.map((record, index) => [record.sequenceNumber, index]))
  let lowest = Number.POSITIVE_INFINITY
  for (const failure of failures as ReadonlyArray<unknown>) {
    if (failure === null || typeof failure !== "object" || !("itemIdentifier" in failure)) {
      return { _tag: "Invalid", reason: "a batchItemFailures entry has no itemIdentifier" }
    }
    const identifier = failure.itemIdentifier
    if (typeof identifier !== "string" || identifier === "") {
      return { _tag: "Invalid", reason: "an itemIdentifier is empty or not a string" }
    }
    const position = positions.get(identifier)
    if (position === undefined) {
      return { _tag: "Invalid", reason: `itemIdentifier ${identifier} is not a sequence number of the batch` }
    }
    lowest = Math.min(lowest, position)
  }
  return { _tag: "Partial", index: lowest }
}

interface Resolved {
  readonly startingPosition: StartingPosition
  readonly consumer: ConsumerType
  readonly batchSize: number
  readonly windowMillis: number
  readonly pollIntervalMillis: number
  readonly retryDelayMillis: number
  readonly maximumRetryAttempts: number
  readonly maxAgeMillis: number | undefined
  readonly bisect: boolean
  readonly reportBatchItemFailures: boolean
  readonly parallelizationFactor: number
  readonly functionArn: string
  readonly region: string
  readonly roleArn: string
  readonly onFailure: FailureDestination.Service | undefined
}

const integerIn = (
  option: string,
  value: number,
  min: number,
  max: number
): Effect.Effect<number, InvalidConfig> =>
  Number.isInteger(value) && value >= min && value <= max
    ? Effect.succeed(value)
    : Effect.fail(
        new InvalidConfig({ option, message: `${option} must be an integer in ${min}..${max}, got ${value}` })
      )

/** Checks a configuration against the ranges of the Lambda API (§2.1) and fills in the defaults. */
export const resolveConfig = (
  config: Config,
  stream: Pick<ShardReader.Service, "region" | "accountId" | "fanOut">
): Effect.Effect<Resolved, InvalidConfig> =>
  Effect.gen(function* () {
    if (config.startingPosition !== "TRIM_HORIZON" && config.startingPosition !== "LATEST") {
      return yield* new InvalidConfig({
        option: "startingPosition",
        message: `startingPosition must be TRIM_HORIZON or LATEST, got ${String(config.startingPosition)}`
      })
    }
    const consumer = config.consumer ?? "standard"
    if (consumer !== "standard" && consumer !== "enhancedFanOut") {
      return yield* new InvalidConfig({
        option: "consumer",
        message: `consumer must be standard or enhancedFanOut, got ${String(consumer)}`
      })
    }
    if (consumer === "enhancedFanOut" && stream.fanOut === undefined) {
      return yield* new InvalidConfig({
        option: "consumer",
        message:
          "an enhanced fan-out consumer needs a stream that pushes records (SubscribeToShard); this one can only be polled"
      })
    }
    const batchSize = yield* integerIn("batchSize", config.batchSize ?? 100, 1, 10_000)
    const window = yield* integerIn(
      "maximumBatchingWindowInSeconds",
      config.maximumBatchingWindowInSeconds ?? 0,
      0,
      300
    )
    const pollIntervalMillis = yield* integerIn(
      "pollIntervalMillis",
      config.pollIntervalMillis ?? 1000,
      1,
      3_600_000
    )
    const retryDelayMillis = yield* integerIn(
      "retryDelayMillis",
      config.retryDelayMillis ?? pollIntervalMillis,
      1,
      3_600_000
    )
    const maximumRetryAttempts = yield* integerIn(
      "maximumRetryAttempts",
      config.maximumRetryAttempts ?? -1,
      -1,
      10_000
    )
    const parallelizationFactor = yield* integerIn(
      "parallelizationFactor",
      config.parallelizationFactor ?? 1,
      1,
      10
    )
    const maximumRecordAge = config.maximumRecordAgeInSeconds ?? -1
    if (maximumRecordAge !== -1) yield* integerIn("maximumRecordAgeInSeconds", maximumRecordAge, 60, 604_800)
    const region = config.region ?? stream.region
    return {
      startingPosition: config.startingPosition,
      consumer,
      batchSize,
      windowMillis: window * 1000,
      pollIntervalMillis,
      retryDelayMillis,
      maximumRetryAttempts,
      maxAgeMillis: maximumRecordAge === -1 ? undefined : maximumRecordAge * 1000,
      bisect: config.bisectBatchOnFunctionError ?? false,
      reportBatchItemFailures: config.reportBatchItemFailures ?? false,
      parallelizationFactor,
      functionArn:
        config.functionArn ?? `arn:aws:lambda:${region}:${stream.accountId}:function:spillway-processor`,
      region,
      roleArn: config.roleArn ?? `arn:aws:iam::${stream.accountId}:role/spillway-processor`,
      onFailure: config.onFailure
    }
  })

type FailureKind = "Unhandled" | "InvalidResponse"

/** A batch as it is being retried: bisection and partial responses replace it with smaller ones. */
interface WorkItem {
  readonly records: ReadonlyArray<RecordStream.StreamRecord>
  /** Retry attempts consumed, inherited from the batch it came from. */
  attempts: number
  /**
   * Invocations that count as attempts on these records (the on-failure record's
   * `approximateInvokeCount`): its own, plus the ones it inherited (see the module header).
   */
  invocations: number
  /** Its records were handed to the handler before (so any invocation of it is a retry). */
  readonly redelivery: boolean
  /** Why its last invocation (or its parent's) failed, for the on-failure record. */
  failure: FailureKind | undefined
}

/** One of a shard's `parallelizationFactor` lanes: its own batch in flight, its own checkpoint. */
interface LaneState {
  readonly shardId: string
  readonly lane: number
  /** The position in the shard up to which every record of this lane is done. */
  checkpoint: string | undefined
  inFlight: boolean
}

/** What a lane has of its shard after its checkpoint. */
interface LaneView {
  /** The lane's next records, in sequence order, at most a batch. */
  readonly records: ReadonlyArray<RecordStream.StreamRecord>
  /**
   * The last record read such that every record of the lane up to it is in `records`: where the
   * lane's checkpoint goes once `records` are done, even if the last records read are other lanes'.
   */
  readonly scannedTo: string | undefined
  /** The shard has more for the lane than `records` (or more than was read): do not wait for a poll. */
  readonly more: boolean
}

/** The lane of a partition key: FNV-1a (32 bit) of its UTF-16 code units, modulo the factor. */
export const laneOf = (partitionKey: string, factor: number): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < partitionKey.length; i++) {
    hash ^= partitionKey.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0) % factor
}

/** `a` comes after `b` in the shard; a position comes after none (`undefined`). */
const sequenceAfter = (a: string | undefined, b: string | undefined): boolean =>
  a !== undefined && (b === undefined || RecordStream.compareSequenceNumbers(a, b) > 0)

const uuid: Effect.Effect<string> = Effect.map(
  Effect.all(Array.from({ length: 16 }, () => Random.nextIntBetween(0, 256, { halfOpen: true }))),
  (bytes) => {
    bytes[6] = (bytes[6]! & 0x0f) | 0x40
    bytes[8] = (bytes[8]! & 0x3f) | 0x80
    const hex = bytes.map((byte) => byte.toString(16).padStart(2, "0")).join("")
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  }
)

/**
 * The clock in whole milliseconds, for the batching window. A `TestClock` can stand at a fractional
 * instant (jittered retries sleep fractions of a millisecond), and the rest of a window measured
 * on it can come out shorter than the nanosecond Effect's `Duration` counts in: a sleep of no
 * time, and a poller spinning until the clock moves. In whole milliseconds every wait is at least 1.
 */
const wholeMillis: Effect.Effect<number> = Effect.map(Clock.currentTimeMillis, Math.floor)

const iso = (epochMillis: number): string => new Date(epochMillis).toISOString()

/**
 * Starts polling every shard of `stream` in fibers that live as long as the surrounding scope.
 * Fails only on an invalid configuration; handler failures are the mapping's business.
 */
export const start = <R>(
  // The stream's read side: a `MemoryStream`, or `@spillway/aws`' `KinesisShardSource` over Kinesis.
  stream: ShardReader.Service,
  handler: Handler<R>,
  config: Config
): Effect.Effect<EventSource, InvalidConfig, Scope.Scope | R> =>
  Effect.gen(function* () {
    const cfg = yield* resolveConfig(config, stream)
    const retentionMillis = stream.retentionHours * 3_600_000
    const eventContext = { streamArn: stream.streamArn, region: cfg.region, roleArn: cfg.roleArn }
    const counters = {
      invocations: 0,
      functionErrors: 0,
      partialFailures: 0,
      invalidResponses: 0,
      bisections: 0,
      retries: 0,
      batchesDiscarded: 0,
      recordsDiscarded: 0,
      onFailureRecordsSent: 0,
      onFailureDropped: 0,
      recordsDelivered: 0,
      recordsSucceeded: 0,
      pollErrors: 0
    }

    const tips = yield* stream.shardTips
    const factor = cfg.parallelizationFactor
    const lanes: ReadonlyArray<LaneState> = stream.shardIds.flatMap((shardId) =>
      Array.from({ length: factor }, (_, lane) => ({
        shardId,
        lane,
        checkpoint: cfg.startingPosition === "LATEST" ? tips[shardId] : undefined,
        inFlight: false
      }))
    )
    // One lane reads a batch at a time; with several it pages through the others' records too.
    const pageLimit = Math.min(10_000, cfg.batchSize * factor)
    const maxPages = factor === 1 ? 1 : 10

    const sleep = (millis: number) => Effect.sleep(millis)

    /** One GetRecords after `after`; `undefined` when the stream did not answer. */
    const poll = (shardId: string, after: string | undefined) =>
      stream.getRecords(shardId, { after, limit: pageLimit }).pipe(
        Effect.map((result): ReadonlyArray<RecordStream.StreamRecord> | undefined => result.records),
        Effect.catch(() =>
          Effect.sync(() => {
            counters.pollErrors++
            return undefined
          })
        )
      )

    /** The longest prefix whose event stays within the synchronous payload limit (at least one record). */
    const cutToPayload = (records: ReadonlyArray<RecordStream.StreamRecord>) => {
      let bytes = Buffer.byteLength('{"Records":[]}')
      let count = 0
      for (const record of records) {
        const size =
          Buffer.byteLength(JSON.stringify(LambdaEvents.fromStreamRecord(record, eventContext))) + 1
        if (count > 0 && bytes + size > maxPayloadBytes) break
        bytes += size
        count++
      }
      return records.slice(0, count)
    }

    const fanOut = cfg.consumer === "enhancedFanOut" ? stream.fanOut : undefined

    /**
     * What the mapping has of a shard after `after`: for the standard iterator, what one
     * GetRecords answers; for a fan-out consumer, the records the stream has pushed so far (those
     * written at least the propagation delay ago; a shard's arrival times never decrease).
     */
    const readPage = (shardId: string, after: string | undefined) =>
      fanOut === undefined
        ? Effect.map(poll(shardId, after), (records) =>
            records === undefined ? undefined : { records, complete: true }
          )
        : Effect.flatMap(poll(shardId, after), (records) =>
            records === undefined
              ? Effect.succeed(undefined)
              : Effect.map(Clock.currentTimeMillis, (now) => {
                  const due = now - fanOut.propagationMillis
                  let pushed = 0
                  while (pushed < records.length && records[pushed]!.approximateArrivalTimestamp <= due)
                    pushed++
                  return pushed === records.length
                    ? { records, complete: true }
                    : { records: records.slice(0, pushed), complete: false }
                })
          )

    /**
     * A lane's next batch at most, after its checkpoint; `undefined` when the stream did not
     * answer. With one lane this is one read of a batch; with several, the lane pages through the
     * shard (the other lanes' records skipped) until it has a batch, reaches the end of what the
     * stream gives, or has read `maxPages` pages.
     */
    const read = (lane: LaneState) =>
      Effect.gen(function* () {
        const records: Array<RecordStream.StreamRecord> = []
        let scannedTo: string | undefined
        let after = lane.checkpoint
        for (let pages = 0; pages < maxPages; pages++) {
          const page = yield* readPage(lane.shardId, after)
          if (page === undefined) {
            return pages === 0 ? undefined : ({ records, scannedTo, more: true } satisfies LaneView)
          }
          for (const record of page.records) {
            if (factor > 1 && laneOf(record.partitionKey, factor) !== lane.lane) {
              scannedTo = record.sequenceNumber
              continue
            }
            if (records.length === cfg.batchSize) return { records, scannedTo, more: true } satisfies LaneView
            records.push(record)
            scannedTo = record.sequenceNumber
          }
          // The end of the shard, or of what it has pushed: nothing more for now.
          if (!page.complete || page.records.length < pageLimit) {
            return { records, scannedTo, more: false } satisfies LaneView
          }
          after = page.records.at(-1)!.sequenceNumber
        }
        return { records, scannedTo, more: true } satisfies LaneView
      })

    /** Every record of the lane up to `position` is done: it reads on from there. */
    const moveTo = (lane: LaneState, position: string | undefined) => {
      if (sequenceAfter(position, lane.checkpoint)) lane.checkpoint = position
    }

    /**
     * Waits before reading again: a polling consumer for its poll interval (`limit`, if sooner),
     * a fan-out consumer until the stream pushes a record after `after` or `limit` passes. After a
     * failed read, both wait the poll interval (a fan-out consumer then subscribes again).
     */
    const waitForMore = (lane: LaneState, after: string | undefined, limit: number, failed: boolean) =>
      fanOut === undefined || failed
        ? sleep(Math.min(cfg.pollIntervalMillis, limit))
        : limit === Number.POSITIVE_INFINITY
          ? fanOut.awaitPushed(lane.shardId, after)
          : Effect.race(fanOut.awaitPushed(lane.shardId, after), sleep(limit))

    /**
     * Waits for records, then for the batch to fill or the batching window to close. `scannedTo`
     * is where the lane's checkpoint goes once the batch is done (`undefined`: its last record).
     */
    const collectBatch = (lane: LaneState) =>
      Effect.gen(function* () {
        while (true) {
          let view = yield* read(lane)
          if (view === undefined || view.records.length === 0) {
            // Only other lanes' records (or none): this lane is done up to them.
            const before = lane.checkpoint
            moveTo(lane, view?.scannedTo)
            // More of the shard to skip through: read on at once (the checkpoint moved, so this
            // cannot spin), as a lane with records would.
            if (view?.more === true && lane.checkpoint !== before) continue
            yield* waitForMore(lane, lane.checkpoint, Number.POSITIVE_INFINITY, view === undefined)
            continue
          }
          const windowEnd = (yield* wholeMillis) + cfg.windowMillis
          let failed = false
          while (true) {
            const batch = cutToPayload(view.records)
            const cut = batch.length < view.records.length
            const full = cut || view.more || batch.length >= cfg.batchSize
            const now = yield* wholeMillis
            if (full || now >= windowEnd) {
              lane.inFlight = true
              return { records: batch, full, scannedTo: cut ? undefined : view.scannedTo }
            }
            // After a failed read, wait as after any failed read: a fan-out consumer would
            // otherwise be woken at once by the records it could not read.
            yield* waitForMore(lane, view.scannedTo, windowEnd - now, failed)
            const again = yield* read(lane)
            failed = again === undefined
            view = again ?? view
          }
        }
      })

    const advance = (lane: LaneState, records: ReadonlyArray<RecordStream.StreamRecord>) => {
      const last = records.at(-1)
      if (last !== undefined) lane.checkpoint = last.sequenceNumber
    }

    const invoke = (item: WorkItem) =>
      Effect.gen(function* () {
        item.invocations++
        counters.invocations++
        counters.recordsDelivered += item.records.length
        if (item.redelivery || item.invocations > 1) counters.retries++
        const event: LambdaEvents.KinesisEvent = {
          Records: item.records.map((record) => LambdaEvents.fromStreamRecord(record, eventContext))
        }
        // `suspend` also turns a handler that throws instead of returning an Effect into a defect.
        const exit = yield* Effect.exit(Effect.suspend(() => handler(event)))
        if (Exit.isFailure(exit)) return { _tag: "FunctionError" } as const
        return cfg.reportBatchItemFailures ? interpretResponse(exit.value, item.records) : success
      }).pipe(
        Effect.withSpan("KinesisEventSource.invoke", {
          attributes: { shardId: item.records[0]!.shardId, batchSize: item.records.length }
        })
      )

    const sendOnFailure = (destination: FailureDestination.Service, record: OnFailure.OnFailureRecord) =>
      destination.send(record).pipe(
        // Lambda keeps trying a destination that is temporarily down; the shard waits meanwhile.
        Effect.retry({
          schedule: Schedule.spaced(cfg.retryDelayMillis),
          while: (error: FailureDestination.FailureDestinationError) => error.isRetryable
        }),
        Effect.matchEffect({
          onFailure: () =>
            Effect.sync(() => {
              counters.onFailureDropped++
            }),
          onSuccess: () =>
            Effect.sync(() => {
              counters.onFailureRecordsSent++
            })
        })
      )

    const discard = (lane: LaneState, item: WorkItem, condition: typeof OnFailure.Condition.Type) =>
      Effect.gen(function* () {
        counters.batchesDiscarded++
        counters.recordsDiscarded += item.records.length
        const destination = cfg.onFailure
        if (destination !== undefined) {
          const now = yield* Clock.currentTimeMillis
          const requestId = yield* uuid
          const first = item.records[0]!
          const last = item.records.at(-1)!
          const record = new OnFailure.OnFailureRecord({
            requestContext: {
              requestId,
              functionArn: cfg.functionArn,
              condition,
              approximateInvokeCount: item.invocations
            },
            responseContext: {
              statusCode: 200,
              executedVersion: "$LATEST",
              ...(item.failure === "Unhandled" ? { functionError: "Unhandled" } : {})
            },
            version: "1.0",
            timestamp: iso(now),
            KinesisBatchInfo: new OnFailure.KinesisBatchInfo({
              shardId: lane.shardId,
              startSequenceNumber: first.sequenceNumber,
              endSequenceNumber: last.sequenceNumber,
              approximateArrivalOfFirstRecord: iso(first.approximateArrivalTimestamp),
              approximateArrivalOfLastRecord: iso(last.approximateArrivalTimestamp),
              batchSize: item.records.length,
              streamArn: stream.streamArn
            })
          })
          yield* sendOnFailure(destination, record)
        }
        advance(lane, item.records)
      })

    const tooOld = (item: WorkItem, now: number): boolean => {
      const oldest = item.records.reduce(
        (min, record) => Math.min(min, record.approximateArrivalTimestamp),
        Number.POSITIVE_INFINITY
      )
      return (
        (cfg.maxAgeMillis !== undefined && now - oldest > cfg.maxAgeMillis) || now - oldest > retentionMillis
      )
    }

    const exhausted = (item: WorkItem): boolean =>
      cfg.maximumRetryAttempts !== -1 && item.attempts > cfg.maximumRetryAttempts

    /** §2.3: runs one polled batch to completion (success or discard); the checkpoint ends after it. */
    const processBatch = (lane: LaneState, batch: ReadonlyArray<RecordStream.StreamRecord>) =>
      Effect.gen(function* () {
        const pending: Array<WorkItem> = [
          { records: batch, attempts: 0, invocations: 0, redelivery: false, failure: undefined }
        ]
        while (pending.length > 0) {
          let item = pending.shift()!
          while (true) {
            if (tooOld(item, yield* Clock.currentTimeMillis)) {
              yield* discard(lane, item, "RecordAgeExceeded")
              break
            }
            const verdict = yield* invoke(item)
            if (verdict._tag === "Success") {
              counters.recordsSucceeded += item.records.length
              advance(lane, item.records)
              break
            }
            if (verdict._tag === "Partial") {
              counters.partialFailures++
              // Records before the lowest failure are done: the checkpoint moves to just before it,
              // and only the remainder (successful later records included) is sent again.
              const done = item.records.slice(0, verdict.index)
              counters.recordsSucceeded += done.length
              advance(lane, done)
              item = {
                records: item.records.slice(verdict.index),
                attempts: item.attempts + 1,
                // The remainder was delivered in that invocation, which consumed an attempt.
                invocations: item.invocations,
                redelivery: true,
                failure: undefined
              }
            } else {
              const failure: FailureKind = verdict._tag === "FunctionError" ? "Unhandled" : "InvalidResponse"
              if (failure === "Unhandled") counters.functionErrors++
              else counters.invalidResponses++
              if (cfg.bisect && item.records.length > 1) {
                // Splitting does not consume an attempt; the first half goes first to keep order.
                counters.bisections++
                const middle = Math.ceil(item.records.length / 2)
                const half = (records: ReadonlyArray<RecordStream.StreamRecord>): WorkItem => ({
                  records,
                  attempts: item.attempts,
                  // The invocation that failed and split the batch consumed no attempt.
                  invocations: item.invocations - 1,
                  redelivery: true,
                  failure
                })
                pending.unshift(half(item.records.slice(0, middle)), half(item.records.slice(middle)))
                yield* sleep(cfg.retryDelayMillis)
                break
              }
              item.attempts++
              item.failure = failure
            }
            if (exhausted(item)) {
              yield* discard(lane, item, "RetryAttemptsExhausted")
              break
            }
            yield* sleep(cfg.retryDelayMillis)
          }
        }
      })

    const runLane = (lane: LaneState) =>
      Effect.gen(function* () {
        while (true) {
          const batch = yield* collectBatch(lane)
          yield* processBatch(lane, batch.records)
          moveTo(lane, batch.scannedTo)
          lane.inFlight = false
          // A full batch means the shard has more to give: poll again at once, as Lambda does. A
          // fan-out consumer never waits for a poll: it goes back to what the stream pushed.
          if (!batch.full && fanOut === undefined) yield* sleep(cfg.pollIntervalMillis)
        }
      })

    for (const lane of lanes) {
      yield* Effect.forkScoped(runLane(lane))
    }

    /** A shard's checkpoint: the lowest of its lanes' (every record up to it is done). */
    const shardCheckpoint = (shardId: string): string | undefined => {
      let lowest: string | undefined
      for (const lane of lanes) {
        if (lane.shardId !== shardId) continue
        if (lane.checkpoint === undefined) return undefined
        if (lowest === undefined || sequenceAfter(lowest, lane.checkpoint)) lowest = lane.checkpoint
      }
      return lowest
    }

    return {
      functionArn: cfg.functionArn,
      checkpoints: Effect.sync(() =>
        Object.fromEntries(stream.shardIds.map((shardId) => [shardId, shardCheckpoint(shardId)]))
      ),
      counters: Effect.sync(() => ({ ...counters })),
      isIdle: Effect.map(stream.shardTips, (current) =>
        lanes.every((lane) => {
          if (lane.inFlight) return false
          const tip = current[lane.shardId]
          return tip === undefined || (lane.checkpoint !== undefined && !sequenceAfter(tip, lane.checkpoint))
        })
      )
    } satisfies EventSource
  }).pipe(Effect.withSpan("KinesisEventSource.start"))
