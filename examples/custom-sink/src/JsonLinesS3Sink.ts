/**
 * A user's own `DocumentSink`: every document as a JSON line in S3, written next to OpenSearch
 * (`DocumentSink.fanOut`) so a data lake (Athena, Spark, a `grep`) holds what the index holds.
 *
 * Idempotent by id on a store without appends. S3 cannot append a line to an object, so "one
 * object per write" would make every re-write a new object: the processor re-writes only the
 * items still pending, the event source mapping bisects batches, the failure reprocessor and a
 * restore rebuild batches from ranges — the same id comes back in batches of other shapes, and no
 * batch key (by time, or by a hash of the batch's ids) names the same object twice. Readers would
 * then have to deduplicate every query. Instead the key is a function of the id alone:
 *
 *   `<prefix><sha256 of the id's UTF-8 bytes, hex>.jsonl`, holding one line
 *   `{"id":…,"body":…}\n` (the line `FirehoseSink` writes, so one reader reads both).
 *
 * Writing an id again overwrites its object (S3 PUTs are atomic and read-after-write consistent),
 * so the bucket holds exactly one document per id: the last one written, which in Spillway is the
 * same document (a replay carries the record as the collector accepted it, so the bytes, and the
 * ETag, are the same too). The hash keeps keys within S3's 1,024 bytes whatever the id (up to 512
 * bytes, any characters), keeps NFC and NFD spellings apart, and spreads keys over S3's
 * partitions. Every object under the prefix is one line, so the prefix reads as one JSON-lines
 * table. The price is one PUT per document (about $5 per million on S3 Standard), paid for
 * documents that never need deduplicating downstream.
 *
 * Answers, in order, once per document:
 * - a body that cannot be serialized (a `bigint`, a cycle), or an id that is not well-formed
 *   Unicode (a lone surrogate has no UTF-8 bytes to hash), is `Rejected` without a request;
 * - each other document is one `PutObject`, `concurrency` at a time: `Written` on success;
 *   throttling (503 `SlowDown`, 429) and unavailability (5xx, no response, S3's 400
 *   `RequestTimeout`) are `Retryable`; access denied (403, expired or missing credentials), a
 *   missing bucket and any other refusal are `Rejected` — the stage retries only what can succeed;
 * - when every document was sent and every `PutObject` failed for the same reason (an outage, a
 *   role without `s3:PutObject`, a bucket that does not exist), the write fails whole as a
 *   `DocumentSinkError` of that reason, retryable for `Throttled` and `Unavailable` only.
 *
 * Retries and backoff are not the sink's: the SDK retries connection faults only (`ClientConfig`),
 * and the processor writes again what was answered `Retryable`, on `Schedules.sinkWrite`.
 *
 * Configuration (`layerConfig`): `CUSTOM_SINK_BUCKET` (required), `CUSTOM_SINK_PREFIX` (default
 * `documents/`); the client (`S3Client.layerConfig`) reads `AWS_REGION`, `AWS_ENDPOINT_URL_S3`,
 * `AWS_S3_FORCE_PATH_STYLE`.
 */
import { createHash } from "node:crypto"
import { PutObjectCommand } from "@aws-sdk/client-s3"
import { S3Client } from "@spillway/aws/S3Client"
import { DocumentSink } from "@spillway/core"
import { Config, Effect, Layer, Result, Schema } from "effect"

export interface Options {
  /** The bucket the documents go to. */
  readonly bucket: string
  /** Written before every key; end it with `/` for a folder. @default "documents/" */
  readonly prefix?: string
  /** Names the sink in metrics, logs, errors and `fanOut` reasons. @default "json-lines-s3" */
  readonly name?: string
  /**
   * `PutObject` requests in flight at once within one write. The SDK's HTTP agent keeps up to 50
   * sockets; S3 takes 3,500 PUTs a second per partition. @default 32
   */
  readonly concurrency?: number
}

export const defaultPrefix = "documents/"
export const defaultName = "json-lines-s3"
export const defaultConcurrency = 32

/** Where a document id's object lives: `<prefix><sha256(UTF-8 of id), hex>.jsonl`. */
export const keyOf = (prefix: string, id: string): string =>
  `${prefix}${createHash("sha256").update(id, "utf8").digest("hex")}.jsonl`

/** A lone surrogate: a UTF-16 code unit with no Unicode scalar value, hence no UTF-8 bytes. */
const loneSurrogate = /\p{Cs}/u

/** The object's content: one JSON line. Throws when the body cannot be serialized. */
export const encodeLine = (document: DocumentSink.Document): string =>
  `${JSON.stringify({ id: document.id, body: document.body })}\n`

const StoredLine = Schema.fromJsonString(
  Schema.Struct({ id: Schema.String, body: Schema.Record(Schema.String, Schema.Unknown) })
)

/** Reads an object written by this sink back into its document; anything else fails with a reason. */
export const decodeLine = (text: string): Result.Result<DocumentSink.Document, string> =>
  text.indexOf("\n") !== text.length - 1
    ? Result.fail("not one JSON line ending in a newline")
    : Result.mapError(
        Schema.decodeUnknownResult(StoredLine)(text),
        (error) => `not a document line: ${error.message}`
      )

/** What an SDK error says, read without trusting its class. */
export interface S3Failure {
  /** The S3 error code (`SlowDown`, `AccessDenied`, `NoSuchBucket`, …) or the SDK's error name. */
  readonly name: string
  /** The HTTP status; `undefined` when no response arrived (socket, DNS, timeout). */
  readonly status: number | undefined
  readonly message: string
}

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined

export const inspect = (error: unknown): S3Failure => {
  const name = field(error, "name")
  const message = field(error, "message")
  const status = field(field(error, "$metadata"), "httpStatusCode")
  const text = typeof message === "string" ? message : String(error)
  return {
    name: typeof name === "string" && name.length > 0 ? name : "Error",
    status: typeof status === "number" ? status : undefined,
    message: text.length > 300 ? `${text.slice(0, 300)}…` : text
  }
}

const throttlingNames: ReadonlySet<string> = new Set([
  "SlowDown",
  "TooManyRequests",
  "RequestLimitExceeded",
  "ThrottlingException"
])

const accessNames: ReadonlySet<string> = new Set([
  "AccessDenied",
  "AllAccessDisabled",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "AccountProblem",
  "CredentialsProviderError"
])

/**
 * The reason for a failed `PutObject`. 503 is S3's way of saying "slow down" (`SlowDown`, and
 * `ServiceUnavailable` with "reduce your request rate"); a 403 is a bucket policy, a KMS key or a
 * credential, and stays refused until someone changes it; `RequestTimeout` is a 400 that S3
 * itself says to retry. A status without a code (a body the SDK could not parse) still maps.
 */
export const reasonOf = (failure: S3Failure): DocumentSink.ErrorReason => {
  if (throttlingNames.has(failure.name) || failure.status === 503 || failure.status === 429)
    return "Throttled"
  if (accessNames.has(failure.name) || failure.status === 403) return "AccessDenied"
  if (failure.name === "EntityTooLarge") return "TooLarge"
  if (failure.name === "RequestTimeout" || failure.status === undefined || failure.status >= 500) {
    return "Unavailable"
  }
  return "InvalidRequest"
}

const isRetryable = (reason: DocumentSink.ErrorReason) => reason === "Throttled" || reason === "Unavailable"

interface Failed {
  readonly reason: DocumentSink.ErrorReason
  readonly message: string
  readonly cause: unknown
}

type Attempt =
  | { readonly _tag: "Written" }
  | { readonly _tag: "Refused"; readonly reason: string }
  | { readonly _tag: "Failed"; readonly failed: Failed }

const written: Attempt = { _tag: "Written" }

export const make = (options: Options): Effect.Effect<DocumentSink.Service, never, S3Client> =>
  Effect.gen(function* () {
    const client = yield* S3Client
    const { bucket } = options
    const prefix = options.prefix ?? defaultPrefix
    const name = options.name ?? defaultName
    const concurrency = options.concurrency ?? defaultConcurrency

    const put = (key: string, line: string): Effect.Effect<Attempt> =>
      Effect.tryPromise({
        try: (signal) =>
          client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: key,
              Body: line,
              ContentType: "application/x-ndjson"
            }),
            { abortSignal: signal }
          ),
        catch: (error): Failed => {
          const failure = inspect(error)
          const status = failure.status === undefined ? "no response" : String(failure.status)
          return {
            reason: reasonOf(failure),
            message: `PutObject s3://${bucket}/${key}: ${status} ${failure.name}: ${failure.message}`,
            cause: error
          }
        }
      }).pipe(Effect.match({ onSuccess: () => written, onFailure: (failed) => ({ _tag: "Failed", failed }) }))

    const attempt = (document: DocumentSink.Document): Effect.Effect<Attempt> => {
      if (loneSurrogate.test(document.id)) {
        return Effect.succeed({
          _tag: "Refused",
          reason: `${name}: the id is not well-formed Unicode (a lone surrogate), so it has no UTF-8 bytes to key an object by`
        })
      }
      let line: string
      try {
        line = encodeLine(document)
      } catch (error) {
        return Effect.succeed({
          _tag: "Refused",
          reason: `${name}: the body cannot be serialized: ${String(error)}`
        })
      }
      return put(keyOf(prefix, document.id), line)
    }

    const write = Effect.fn("JsonLinesS3Sink.write")(function* (
      documents: ReadonlyArray<DocumentSink.Document>
    ) {
      if (documents.length === 0) return []
      const attempts = yield* Effect.forEach(documents, attempt, { concurrency })
      const failures = attempts.flatMap((a) => (a._tag === "Failed" ? [a.failed] : []))
      const first = failures[0]
      if (
        first !== undefined &&
        failures.length === attempts.length &&
        failures.every((failed) => failed.reason === first.reason)
      ) {
        return yield* new DocumentSink.DocumentSinkError({
          sink: name,
          reason: first.reason,
          message: `all ${failures.length} PutObject requests failed (${first.reason}), the first: ${first.message}`,
          cause: first.cause
        })
      }
      return attempts.map((a): DocumentSink.WriteOutcome => {
        if (a._tag === "Written") return DocumentSink.written
        if (a._tag === "Refused") return { _tag: "Rejected", reason: a.reason }
        const reason = `${name}: ${a.failed.message}`
        return isRetryable(a.failed.reason) ? { _tag: "Retryable", reason } : { _tag: "Rejected", reason }
      })
    })

    return DocumentSink.DocumentSink.of({ name, write })
  })

export const layer = (options: Options): Layer.Layer<DocumentSink.DocumentSink, never, S3Client> =>
  Layer.effect(DocumentSink.DocumentSink, make(options))

const BucketName = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
    message: "must be an S3 bucket name (3–63 characters of a-z, 0-9, '.', '-')"
  })
)

// S3 keys are at most 1,024 UTF-8 bytes; the hash and `.jsonl` take 70 of them.
const maxPrefixBytes = 1024 - 70

const Prefix = Schema.String.check(
  Schema.makeFilter((prefix: string) => !prefix.startsWith("/"), {
    message: "must not start with '/' (S3 keys have no leading slash: it would be part of the key)"
  }),
  Schema.makeFilter((prefix: string) => Buffer.byteLength(prefix, "utf8") <= maxPrefixBytes, {
    message: `must be at most ${maxPrefixBytes} UTF-8 bytes (S3 keys are at most 1,024)`
  })
)

/** The options from `Config`: `CUSTOM_SINK_BUCKET` (required), `CUSTOM_SINK_PREFIX` (default `documents/`). */
export const optionsConfig: Config.Config<Options> = Config.all({
  bucket: Config.schema(BucketName, "CUSTOM_SINK_BUCKET"),
  prefix: Config.schema(Prefix, "CUSTOM_SINK_PREFIX").pipe(Config.withDefault(defaultPrefix))
})

/** `make` with its options from `Config` (see `optionsConfig`). */
export const makeConfig = (
  overrides: Omit<Options, "bucket" | "prefix"> = {}
): Effect.Effect<DocumentSink.Service, Config.ConfigError, S3Client> =>
  Effect.flatMap(optionsConfig, (options) => make({ ...options, ...overrides }))

/** The sink from `Config` (see `optionsConfig`), over the `S3Client` it is given. */
export const layerConfig = (
  overrides: Omit<Options, "bucket" | "prefix"> = {}
): Layer.Layer<DocumentSink.DocumentSink, Config.ConfigError, S3Client> =>
  Layer.effect(DocumentSink.DocumentSink, makeConfig(overrides))
