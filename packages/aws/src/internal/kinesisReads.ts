/**
 * The Kinesis read calls both `KinesisRecordStream` (range reads for replay) and
 * `KinesisShardSource` (the event source mapping's polling) make, with one error mapping:
 * GetShardIterator at a position, and one GetRecords page that reports an expired iterator as a
 * value (the caller renews it) rather than as an error.
 */
import {
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
  type KinesisClient
} from "@aws-sdk/client-kinesis"
import { RecordStream } from "@spillway/core"
import { Effect } from "effect"
import * as AwsErrors from "./awsErrors.js"

const throttlingNames: ReadonlySet<string> = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "LimitExceededException",
  // Not in the SDK's throttling list (docs/aws-behaviour.md §1.4), but a retry after a pause is what helps.
  "KMSThrottlingException",
  "RequestLimitExceeded",
  "TooManyRequestsException"
])

const invalidNames: ReadonlySet<string> = new Set([
  "InvalidArgumentException",
  "ValidationException",
  "SerializationException"
])

/** The reason for a whole-call failure of a Kinesis data-plane operation. */
export const reasonOf = (failure: AwsErrors.AwsFailure): RecordStream.ErrorReason => {
  if (throttlingNames.has(failure.name) || failure.status === 429) return "Throttled"
  if (failure.name === "ResourceNotFoundException") return "NotFound"
  if (failure.name.startsWith("KMS") || AwsErrors.authErrorNames.has(failure.name)) return "AccessDenied"
  if (invalidNames.has(failure.name)) return "InvalidRequest"
  // A stream being updated still takes writes on AWS; an emulator may refuse them for a moment.
  if (failure.name === "ResourceInUseException") return "Unavailable"
  if (failure.status === undefined || failure.status >= 500) return "Unavailable"
  return "InvalidRequest"
}

export const streamError = (reason: RecordStream.ErrorReason, message: string, cause?: unknown) =>
  new RecordStream.RecordStreamError({ reason, message, ...(cause === undefined ? {} : { cause }) })

export const fromSdk =
  (operation: string) =>
  (error: unknown): RecordStream.RecordStreamError => {
    const failure = AwsErrors.inspect(error)
    return streamError(reasonOf(failure), `${operation}: ${AwsErrors.describe(failure)}`, error)
  }

export type Position =
  | { readonly type: "TRIM_HORIZON" }
  | { readonly type: "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER"; readonly sequenceNumber: string }

export const shardIterator = (
  client: KinesisClient,
  streamName: string,
  shardId: string,
  position: Position
): Effect.Effect<string, RecordStream.RecordStreamError> => {
  const input: GetShardIteratorCommandInput =
    position.type === "TRIM_HORIZON"
      ? { StreamName: streamName, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" }
      : {
          StreamName: streamName,
          ShardId: shardId,
          ShardIteratorType: position.type,
          StartingSequenceNumber: position.sequenceNumber
        }
  return Effect.tryPromise({
    try: (signal) => client.send(new GetShardIteratorCommand(input), { abortSignal: signal }),
    catch: fromSdk("GetShardIterator")
  }).pipe(
    Effect.flatMap((output) =>
      output.ShardIterator === undefined
        ? Effect.fail(streamError("Unavailable", `GetShardIterator returned no iterator for ${shardId}`))
        : Effect.succeed(output.ShardIterator)
    )
  )
}

export type Page =
  | { readonly _tag: "Page"; readonly output: GetRecordsCommandOutput }
  | { readonly _tag: "Expired" }

export const getRecordsPage = (
  client: KinesisClient,
  iterator: string,
  limit: number
): Effect.Effect<Page, RecordStream.RecordStreamError> =>
  Effect.tryPromise({
    try: (signal) =>
      client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: limit }), { abortSignal: signal }),
    catch: (error) => error
  }).pipe(
    Effect.map((output): Page => ({ _tag: "Page", output })),
    Effect.catch((error) =>
      AwsErrors.inspect(error).name === "ExpiredIteratorException"
        ? Effect.succeed<Page>({ _tag: "Expired" })
        : Effect.fail(fromSdk("GetRecords")(error))
    )
  )
