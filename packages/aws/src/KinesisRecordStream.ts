/**
 * `RecordStream` on Kinesis Data Streams (docs/aws-behaviour.md §1), through the SDK v3 client.
 *
 * Guarantees:
 * - `putRecords` answers once per entry in request order, from each result entry's `ErrorCode`
 *   (the SDK never retries these; the caller does). A call over the PutRecords limits is split with
 *   `RecordStream.chunkEntries` and sent chunk after chunk; if a later chunk fails as a whole, its
 *   entries and the following ones are answered `Failed` (never the earlier, stored ones, which a
 *   caller would otherwise put twice) — only a failure of the first chunk fails the call.
 * - whole-call errors become `RecordStreamError` reasons: throttling → `Throttled`; 5xx, network and
 *   timeouts → `Unavailable`; missing stream or shard → `NotFound`; invalid arguments →
 *   `InvalidRequest`; credentials and KMS key problems → `AccessDenied`.
 * - `readRange` reads with `GetShardIterator AT_SEQUENCE_NUMBER` and follows `NextShardIterator`
 *   until it passes the end of the range, renewing an expired iterator after the last record read.
 *   Kinesis removes records only by retention, so when the record at the start of the range is no
 *   longer there the read fails `TrimmedByRetention` instead of returning a shorter range.
 */
import {
  DescribeStreamSummaryCommand,
  PutRecordsCommand,
  type PutRecordsResultEntry
} from "@aws-sdk/client-kinesis"
import { RecordStream } from "@spillway/core"
import { Config, Effect, Layer, Option, Result, Schema } from "effect"
import * as ClientConfig from "./ClientConfig.js"
import * as AwsErrors from "./internal/awsErrors.js"
import * as KinesisReads from "./internal/kinesisReads.js"
import { KinesisClient } from "./KinesisClient.js"

export interface Options {
  readonly streamName: string
  /** The stream's ARN, as Lambda names it in events and on-failure records. */
  readonly streamArn: string
  /** @default RecordStream.defaultLimits */
  readonly limits?: RecordStream.Limits
  /** `Limit` of each GetRecords call in `readRange`, 1–10,000. @default 10000 */
  readonly readPageSize?: number
  /** Iterator renewals allowed in a row without reading a record before `readRange` gives up. @default 3 */
  readonly maxIteratorRenewals?: number
}

/** The reason for a whole-call failure of a Kinesis data-plane operation. */
export const reasonOf = KinesisReads.reasonOf

const { streamError, fromSdk } = KinesisReads

const sequenceNumberPattern = /^(0|[1-9]\d{0,128})$/

const outcomeOf = (entry: PutRecordsResultEntry | undefined): RecordStream.PutOutcome => {
  if (entry?.ErrorCode !== undefined) {
    return {
      _tag: "Failed",
      // Only these two codes are documented per entry; anything else is treated as the retryable one.
      errorCode:
        entry.ErrorCode === "ProvisionedThroughputExceededException"
          ? "ProvisionedThroughputExceededException"
          : "InternalFailure",
      message: entry.ErrorMessage ?? entry.ErrorCode
    }
  }
  if (entry?.ShardId !== undefined && entry.SequenceNumber !== undefined) {
    return { _tag: "Stored", shardId: entry.ShardId, sequenceNumber: entry.SequenceNumber }
  }
  return {
    _tag: "Failed",
    errorCode: "InternalFailure",
    message: "PutRecords returned no result for this entry"
  }
}

export const make = (options: Options): Effect.Effect<RecordStream.Service, never, KinesisClient> =>
  Effect.gen(function* () {
    const client = yield* KinesisClient
    const { streamName, streamArn } = options
    const limits = options.limits ?? RecordStream.defaultLimits
    const readPageSize = options.readPageSize ?? 10_000
    const maxRenewals = options.maxIteratorRenewals ?? 3
    if (!Number.isInteger(readPageSize) || readPageSize < 1 || readPageSize > 10_000) {
      return yield* Effect.die(
        new Error(`KinesisRecordStream: readPageSize must be 1–10000, got ${readPageSize}`)
      )
    }

    const putChunk = (chunk: ReadonlyArray<RecordStream.PutEntry>) =>
      Effect.tryPromise({
        try: (signal) =>
          client.send(
            new PutRecordsCommand({
              StreamName: streamName,
              Records: chunk.map((entry) => ({ PartitionKey: entry.partitionKey, Data: entry.data }))
            }),
            { abortSignal: signal }
          ),
        catch: fromSdk("PutRecords")
      }).pipe(Effect.map((output) => chunk.map((_, i) => outcomeOf(output.Records?.[i]))))

    const putRecords = Effect.fn("KinesisRecordStream.putRecords")(function* (
      entries: ReadonlyArray<RecordStream.PutEntry>
    ) {
      if (entries.length === 0)
        return yield* streamError("InvalidRequest", "PutRecords needs at least one entry")
      const chunks = RecordStream.chunkEntries(entries, limits)
      const outcomes: Array<RecordStream.PutOutcome> = []
      for (const [index, chunk] of chunks.entries()) {
        const answer = yield* Effect.result(putChunk(chunk))
        if (Result.isSuccess(answer)) {
          outcomes.push(...answer.success)
          continue
        }
        if (index === 0) return yield* answer.failure
        const failed: RecordStream.PutOutcome = {
          _tag: "Failed",
          errorCode:
            answer.failure.reason === "Throttled"
              ? "ProvisionedThroughputExceededException"
              : "InternalFailure",
          message: answer.failure.message
        }
        for (const _ of chunks.slice(index).flat()) outcomes.push(failed)
        break
      }
      return outcomes
    })

    const iterator = (
      shardId: string,
      type: "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER",
      sequenceNumber: string
    ) => KinesisReads.shardIterator(client, streamName, shardId, { type, sequenceNumber })

    const getRecords = (shardIterator: string) =>
      KinesisReads.getRecordsPage(client, shardIterator, readPageSize)

    const readRange = Effect.fn("KinesisRecordStream.readRange")(function* (range: RecordStream.ShardRange) {
      const { shardId, startSequenceNumber, endSequenceNumber } = range
      if (
        !sequenceNumberPattern.test(startSequenceNumber) ||
        !sequenceNumberPattern.test(endSequenceNumber)
      ) {
        return yield* streamError("InvalidRequest", "sequence numbers must be decimal strings")
      }
      const start = BigInt(startSequenceNumber)
      const end = BigInt(endSequenceNumber)
      if (start > end) return yield* streamError("InvalidRequest", "range start is after its end")
      const trimmed = () =>
        streamError(
          "TrimmedByRetention",
          `record ${startSequenceNumber} of ${shardId} is no longer in stream ${streamName} (trimmed by retention)`
        )

      const records: Array<RecordStream.StreamRecord> = []
      let last: string | undefined
      let renewals = 0
      let shardIterator = yield* iterator(shardId, "AT_SEQUENCE_NUMBER", startSequenceNumber)
      while (true) {
        const page = yield* getRecords(shardIterator)
        if (page._tag === "Expired") {
          // Iterators live five minutes; a fresh one resumes just after the last record kept.
          if (++renewals > maxRenewals) {
            return yield* streamError("Unavailable", `shard iterator of ${shardId} kept expiring`)
          }
          shardIterator = yield* last === undefined
            ? iterator(shardId, "AT_SEQUENCE_NUMBER", startSequenceNumber)
            : iterator(shardId, "AFTER_SEQUENCE_NUMBER", last)
          continue
        }
        const { output } = page
        const batch = output.Records ?? []
        if (batch.length > 0) renewals = 0
        for (const record of batch) {
          const sequenceNumber = record.SequenceNumber ?? ""
          const sequence = sequenceNumberPattern.test(sequenceNumber) ? BigInt(sequenceNumber) : undefined
          if (sequence === undefined) {
            return yield* streamError("Unavailable", `GetRecords returned a record without a sequence number`)
          }
          // An AT_SEQUENCE_NUMBER read starts at that record when it is still held.
          if (last === undefined && sequence !== start) return yield* trimmed()
          if (sequence > end) return records
          records.push({
            shardId,
            sequenceNumber,
            partitionKey: record.PartitionKey ?? "",
            data: record.Data ?? new Uint8Array(0),
            approximateArrivalTimestamp: record.ApproximateArrivalTimestamp?.getTime() ?? 0
          })
          last = sequenceNumber
          if (sequence === end) return records
        }
        // A closed shard read to its end, or an empty page at the tip: nothing more will come.
        const atTip = batch.length === 0 && (output.MillisBehindLatest ?? 0) === 0
        if (output.NextShardIterator === undefined || atTip) {
          return last === undefined ? yield* trimmed() : records
        }
        shardIterator = output.NextShardIterator
      }
    })

    return RecordStream.RecordStream.of({ streamArn, putRecords, readRange })
  })

export const layer = (options: Options): Layer.Layer<RecordStream.RecordStream, never, KinesisClient> =>
  Layer.effect(RecordStream.RecordStream, make(options))

/** Which stream, as configured: by ARN (preferred) or by name. */
export type StreamTarget =
  | { readonly _tag: "Arn"; readonly streamArn: string; readonly streamName: string }
  | { readonly _tag: "Name"; readonly streamName: string }

/**
 * `STREAM_ARN` (preferred: no call at start) or `STREAM_NAME`. With a name only, the layer asks
 * Kinesis for the ARN when it starts, which also proves the stream exists.
 */
export const streamTarget: Config.Config<StreamTarget> = Config.all([
  Config.option(
    Config.String("STREAM_ARN").pipe(
      Config.mapEffect((arn) => {
        const parts = ClientConfig.parseArn("kinesis", arn)
        if (Result.isFailure(parts)) return Effect.fail(ClientConfig.invalid("STREAM_ARN", parts.failure))
        const { resource } = parts.success
        return resource.startsWith("stream/") && resource.length > "stream/".length
          ? Effect.succeed<StreamTarget>({
              _tag: "Arn",
              streamArn: arn,
              streamName: resource.slice("stream/".length)
            })
          : Effect.fail(ClientConfig.invalid("STREAM_ARN", "must end in stream/<stream name>"))
      })
    )
  ),
  Config.option(
    Config.schema(
      Schema.String.check(
        Schema.isPattern(/^[a-zA-Z0-9_.-]{1,128}$/, { message: "must be 1–128 characters of [a-zA-Z0-9_.-]" })
      ),
      "STREAM_NAME"
    )
  )
]).pipe(
  Config.mapEffect(([arn, name]) =>
    Option.match(arn, {
      onSome: (target) => Effect.succeed(target),
      onNone: () =>
        Option.match(name, {
          onSome: (streamName) => Effect.succeed<StreamTarget>({ _tag: "Name", streamName }),
          onNone: () => Effect.fail(ClientConfig.missing("STREAM_ARN", "set STREAM_ARN (or STREAM_NAME)"))
        })
    })
  )
)

/** Resolves a configured stream to the name and ARN `make` needs. */
export const resolve = (
  target: StreamTarget
): Effect.Effect<
  { readonly streamName: string; readonly streamArn: string },
  RecordStream.RecordStreamError,
  KinesisClient
> =>
  target._tag === "Arn"
    ? Effect.succeed({ streamName: target.streamName, streamArn: target.streamArn })
    : Effect.flatMap(KinesisClient, (client) =>
        Effect.tryPromise({
          try: (signal) =>
            client.send(new DescribeStreamSummaryCommand({ StreamName: target.streamName }), {
              abortSignal: signal
            }),
          catch: (error) => {
            const failure = AwsErrors.inspect(error)
            return streamError(
              reasonOf(failure),
              `STREAM_NAME=${target.streamName}: DescribeStreamSummary: ${AwsErrors.describe(failure)}`
            )
          }
        }).pipe(
          Effect.flatMap((output) => {
            const streamArn = output.StreamDescriptionSummary?.StreamARN
            return streamArn === undefined
              ? Effect.fail(
                  streamError(
                    "Unavailable",
                    `STREAM_NAME=${target.streamName}: DescribeStreamSummary gave no ARN`
                  )
                )
              : Effect.succeed({ streamName: target.streamName, streamArn })
          })
        )
      )

/** The stream from `Config` (`STREAM_ARN` or `STREAM_NAME`); needs a `KinesisClient`. */
export const layerConfig = (
  options: Omit<Options, "streamName" | "streamArn"> = {}
): Layer.Layer<
  RecordStream.RecordStream,
  Config.ConfigError | RecordStream.RecordStreamError,
  KinesisClient
> =>
  Layer.effect(
    RecordStream.RecordStream,
    Effect.gen(function* () {
      const target = yield* streamTarget
      const stream = yield* resolve(target)
      return yield* make({ ...options, ...stream })
    })
  )
