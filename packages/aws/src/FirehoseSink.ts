/**
 * `DocumentSink` on Amazon Data Firehose `PutRecordBatch` (docs/aws-behaviour.md §5.1), for delivering
 * documents to an S3 archive (core `Archive` describes the layout they land in; `FirehoseArchive`
 * reads it back).
 *
 * Each document becomes one record, the JSON line `{"id":…,"body":…}\n`: the newline is the record
 * delimiter Firehose does not add itself. Calls are split to Firehose's limits (500 records,
 * 4 MiB per call) and a document over the per-record limit (1,000 KiB) is `Rejected` unsent.
 * Per record, a result with an `ErrorCode` (`ServiceUnavailableException`, `InternalFailure`) is
 * `Retryable`. A whole-call failure of the first call fails the write (`ServiceUnavailableException`
 * and `LimitExceededException` are Firehose's throttling: `Throttled`); a failure of a later call
 * answers that call's documents and the following ones `Retryable` (or `Rejected` when retrying
 * cannot help) so that documents already delivered are not sent again.
 *
 * Firehose is at-least-once: a retried record can be delivered twice, so archive readers
 * deduplicate by `id` (`decodeRecord` gives it back).
 */
import { PutRecordBatchCommand, type PutRecordBatchResponseEntry } from "@aws-sdk/client-firehose"
import { Batching, DocumentSink } from "@spillway/core"
import { Config, Effect, Layer, Result, Schema } from "effect"
import { FirehoseClient } from "./FirehoseClient.js"
import * as AwsErrors from "./internal/awsErrors.js"

export interface Limits {
  readonly maxRecordsPerCall: number
  readonly maxBytesPerCall: number
  readonly maxBytesPerRecord: number
}

export const defaultLimits: Limits = {
  maxRecordsPerCall: 500,
  maxBytesPerCall: 4 * 1024 * 1024,
  maxBytesPerRecord: 1000 * 1024
}

export interface Options {
  readonly deliveryStreamName: string
  /** Names the sink in metrics, logs and errors. @default "firehose" */
  readonly name?: string
  /** @default defaultLimits */
  readonly limits?: Limits
}

const ArchivedDocument = Schema.fromJsonString(
  Schema.Struct({ id: Schema.String, body: Schema.Record(Schema.String, Schema.Unknown) })
)

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The record bytes Firehose receives for a document. */
export const encodeDocument = (document: DocumentSink.Document): Uint8Array =>
  encoder.encode(`${JSON.stringify({ id: document.id, body: document.body })}\n`)

/** A document back from an archived record (as `Archive.Service.read` returns it). */
export const decodeRecord = (data: Uint8Array): Result.Result<DocumentSink.Document, string> =>
  Result.mapError(
    Schema.decodeUnknownResult(ArchivedDocument)(decoder.decode(data)),
    (error) => `not an archived document: ${error.message}`
  )

const throttlingNames: ReadonlySet<string> = new Set([
  "ServiceUnavailableException",
  "LimitExceededException",
  "ThrottlingException"
])

/** The reason for a whole-call failure of PutRecordBatch. */
export const reasonOf = (failure: AwsErrors.AwsFailure): DocumentSink.ErrorReason => {
  if (throttlingNames.has(failure.name) || failure.status === 429) return "Throttled"
  if (failure.name === "InvalidKMSResourceException" || AwsErrors.authErrorNames.has(failure.name)) {
    return "AccessDenied"
  }
  if (failure.status === 413) return "TooLarge"
  if (failure.status === undefined || failure.status >= 500) return "Unavailable"
  return "InvalidRequest"
}

interface Pending {
  readonly position: number
  readonly data: Uint8Array
}

const chunksOf = (records: ReadonlyArray<Pending>, limits: Limits): Array<Array<Pending>> =>
  Batching.chunkBySize(records, (record) => record.data.byteLength, {
    maxCount: limits.maxRecordsPerCall,
    maxBytes: limits.maxBytesPerCall
  })

const outcomeOf = (entry: PutRecordBatchResponseEntry | undefined): DocumentSink.WriteOutcome =>
  entry?.ErrorCode !== undefined
    ? { _tag: "Retryable", reason: `${entry.ErrorCode}: ${entry.ErrorMessage ?? "record not delivered"}` }
    : entry?.RecordId !== undefined
      ? DocumentSink.written
      : { _tag: "Retryable", reason: "PutRecordBatch returned no result for this record" }

export const make = (options: Options): Effect.Effect<DocumentSink.Service, never, FirehoseClient> =>
  Effect.gen(function* () {
    const client = yield* FirehoseClient
    const name = options.name ?? "firehose"
    const limits = options.limits ?? defaultLimits

    const putBatch = (chunk: ReadonlyArray<Pending>) =>
      Effect.tryPromise({
        try: (signal) =>
          client.send(
            new PutRecordBatchCommand({
              DeliveryStreamName: options.deliveryStreamName,
              Records: chunk.map((record) => ({ Data: record.data }))
            }),
            { abortSignal: signal }
          ),
        catch: (error) => {
          const failure = AwsErrors.inspect(error)
          return new DocumentSink.DocumentSinkError({
            sink: name,
            reason: reasonOf(failure),
            message: `PutRecordBatch: ${AwsErrors.describe(failure)}`,
            cause: error
          })
        }
      }).pipe(Effect.map((output) => chunk.map((_, i) => outcomeOf(output.RequestResponses?.[i]))))

    const write = Effect.fn("FirehoseSink.write")(function* (
      documents: ReadonlyArray<DocumentSink.Document>
    ) {
      const outcomes: Array<DocumentSink.WriteOutcome | undefined> = documents.map(() => undefined)
      const pending: Array<Pending> = []
      for (const [position, document] of documents.entries()) {
        let data: Uint8Array
        try {
          data = encodeDocument(document)
        } catch (error) {
          outcomes[position] = { _tag: "Rejected", reason: `document cannot be serialized: ${String(error)}` }
          continue
        }
        if (data.byteLength > limits.maxBytesPerRecord) {
          outcomes[position] = {
            _tag: "Rejected",
            reason: `document is ${data.byteLength} bytes; Firehose takes at most ${limits.maxBytesPerRecord} per record`
          }
          continue
        }
        pending.push({ position, data })
      }
      const chunks = chunksOf(pending, limits)
      for (const [index, chunk] of chunks.entries()) {
        const answer = yield* Effect.result(putBatch(chunk))
        if (Result.isSuccess(answer)) {
          chunk.forEach((record, i) => {
            outcomes[record.position] = answer.success[i]
          })
          continue
        }
        if (index === 0) return yield* answer.failure
        const outcome: DocumentSink.WriteOutcome = answer.failure.isRetryable
          ? { _tag: "Retryable", reason: answer.failure.message }
          : { _tag: "Rejected", reason: answer.failure.message }
        for (const record of chunks.slice(index).flat()) outcomes[record.position] = outcome
        break
      }
      return outcomes.map(
        (outcome): DocumentSink.WriteOutcome => outcome ?? { _tag: "Retryable", reason: "not sent" }
      )
    })

    return DocumentSink.DocumentSink.of({ name, write })
  })

export const layer = (options: Options): Layer.Layer<DocumentSink.DocumentSink, never, FirehoseClient> =>
  Layer.effect(DocumentSink.DocumentSink, make(options))

/** From `Config`: `FIREHOSE_STREAM_NAME`. */
export const layerConfig: Layer.Layer<DocumentSink.DocumentSink, Config.ConfigError, FirehoseClient> =
  Layer.effect(
    DocumentSink.DocumentSink,
    Effect.flatMap(
      Config.schema(
        Schema.String.check(
          Schema.isPattern(/^[a-zA-Z0-9_.-]{1,64}$/, { message: "must be 1–64 characters of [a-zA-Z0-9_.-]" })
        ),
        "FIREHOSE_STREAM_NAME"
      ),
      (deliveryStreamName) => make({ deliveryStreamName })
    )
  )
