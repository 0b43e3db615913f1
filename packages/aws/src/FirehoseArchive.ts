/**
 * The S3 archive in Amazon Data Firehose's layout (reference §5.4–5.5): objects under UTC hour
 * prefixes `<prefix>YYYY/MM/dd/HH/`, named
 * `<stream>-<version>-YYYY-MM-dd-HH-mm-ss-<uuid>[.gz]` after the arrival time of their oldest record,
 * holding records concatenated as they arrived, optionally gzipped.
 *
 * Firehose inserts no delimiter between records, so Spillway ends each record with a newline (as
 * the `AppendDelimiterToRecord` processor would) and reads objects as newline-delimited records.
 * `read` therefore reads what Firehose delivered as well as what `write` wrote — the archive can be
 * filled by either — and `write` refuses a record that contains a newline, since it could not be
 * read back as one record. Firehose is at-least-once: the same record can be in two objects, so
 * readers deduplicate by record id.
 */
import { randomUUID } from "node:crypto"
import { promisify } from "node:util"
import { gunzip, gzip } from "node:zlib"
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3"
import { Config, type ConfigError, Context, Effect, Layer, Schema } from "effect"
import * as AwsErrors from "./internal/awsErrors.js"
import { S3Client } from "./S3Client.js"

export const ErrorReason = Schema.Literal(
  "Throttled",
  "Unavailable",
  "NotFound",
  "AccessDenied",
  "InvalidRequest",
  /** An object that does not decompress or decode. */
  "Corrupt"
)
export type ErrorReason = typeof ErrorReason.Type

const retryable: ReadonlySet<ErrorReason> = new Set(["Throttled", "Unavailable"])

export class ArchiveError extends Schema.TaggedError<ArchiveError>()("ArchiveError", {
  reason: ErrorReason,
  message: Schema.String
}) {
  get isRetryable(): boolean {
    return retryable.has(this.reason)
  }
}

export interface ArchivedRecord {
  readonly data: Uint8Array
  /** Epoch milliseconds at which the record arrived (names the object's hour). */
  readonly arrivedAt: number
}

export interface Service {
  readonly bucket: string
  /** Writes one object holding `records`, in order; returns its key. */
  readonly write: (records: ReadonlyArray<ArchivedRecord>) => Effect.Effect<string, ArchiveError>
  /** Keys of the objects under the hour prefixes from `from` to `to` (epoch ms, both inclusive), in key order. */
  readonly list: (range: {
    readonly from: number
    readonly to: number
  }) => Effect.Effect<ReadonlyArray<string>, ArchiveError>
  /** The records of one object, in order (gunzipped when the key ends in `.gz`). */
  readonly read: (key: string) => Effect.Effect<ReadonlyArray<Uint8Array>, ArchiveError>
}

export class FirehoseArchive extends Context.Tag("spillway/aws/FirehoseArchive")<
  FirehoseArchive,
  Service
>() {}

export interface Options {
  readonly bucket: string
  /** Prepended to the `YYYY/MM/dd/HH/` part; end it with `/` to make it a folder. @default "" */
  readonly prefix?: string
  /** The delivery stream's name, the first part of every object name. */
  readonly deliveryStreamName: string
  /** Starts at 1 and grows with each destination change. @default 1 */
  readonly deliveryStreamVersion?: number
  /** @default "UNCOMPRESSED" */
  readonly compression?: "GZIP" | "UNCOMPRESSED"
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0")

/** `YYYY/MM/dd/HH/` of an instant, in UTC. */
export const hourPrefix = (at: number): string => {
  const d = new Date(at)
  return `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${pad(d.getUTCHours())}/`
}

/** The object key Firehose gives an object whose oldest record arrived at `oldest`. */
export const objectKey = (options: Options, oldest: number, uuid: string): string => {
  const d = new Date(oldest)
  const stamp = [
    d.getUTCFullYear(),
    pad(d.getUTCMonth() + 1),
    pad(d.getUTCDate()),
    pad(d.getUTCHours()),
    pad(d.getUTCMinutes()),
    pad(d.getUTCSeconds())
  ].join("-")
  const extension = options.compression === "GZIP" ? ".gz" : ""
  return `${options.prefix ?? ""}${hourPrefix(oldest)}${options.deliveryStreamName}-${options.deliveryStreamVersion ?? 1}-${stamp}-${uuid}${extension}`
}

const hourMillis = 3_600_000
// A listing over more hours than a year is a mistake in the range, not a plan.
const maxHours = 24 * 366

/** The reason for an S3 failure. */
export const reasonOf = (failure: AwsErrors.AwsFailure): ErrorReason => {
  if (failure.name === "SlowDown" || failure.status === 429 || failure.status === 503) return "Throttled"
  if (failure.name === "NoSuchKey" || failure.name === "NoSuchBucket" || failure.name === "NotFound")
    return "NotFound"
  if (failure.status === 403 || AwsErrors.authErrorNames.has(failure.name)) return "AccessDenied"
  if (failure.status === undefined || failure.status >= 500) return "Unavailable"
  return "InvalidRequest"
}

const archiveError = (reason: ErrorReason, message: string) => new ArchiveError({ reason, message })

const fromSdk =
  (operation: string) =>
  (error: unknown): ArchiveError => {
    const failure = AwsErrors.inspect(error)
    return archiveError(reasonOf(failure), `${operation}: ${AwsErrors.describe(failure)}`)
  }

const newline = 0x0a
const gzipAsync = promisify(gzip)
const gunzipAsync = promisify(gunzip)

export const make = (options: Options): Effect.Effect<Service, never, S3Client> =>
  Effect.gen(function* () {
    const client = yield* S3Client
    const { bucket } = options
    const prefix = options.prefix ?? ""

    const write = Effect.fn("FirehoseArchive.write")(function* (records: ReadonlyArray<ArchivedRecord>) {
      if (records.length === 0)
        return yield* archiveError("InvalidRequest", "an archive object needs at least one record")
      const parts: Array<Uint8Array> = []
      for (const [i, record] of records.entries()) {
        if (record.data.includes(newline)) {
          return yield* archiveError(
            "InvalidRequest",
            `record ${i} contains a newline and could not be read back whole`
          )
        }
        parts.push(record.data, Uint8Array.of(newline))
      }
      const plain = Buffer.concat(parts)
      const body =
        options.compression === "GZIP"
          ? yield* Effect.tryPromise({
              try: () => gzipAsync(plain),
              catch: (error) => archiveError("InvalidRequest", `gzip: ${String(error)}`)
            })
          : plain
      const oldest = Math.min(...records.map((r) => r.arrivedAt))
      const key = objectKey(options, oldest, randomUUID())
      yield* Effect.tryPromise({
        try: (signal) =>
          client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: key,
              Body: body,
              ContentType: "application/x-ndjson",
              ...(options.compression === "GZIP" ? { ContentEncoding: "gzip" } : {})
            }),
            { abortSignal: signal }
          ),
        catch: fromSdk("PutObject")
      })
      return key
    })

    const listPrefix = (hour: string) =>
      Effect.gen(function* () {
        const keys: Array<string> = []
        let token: string | undefined
        do {
          const page = yield* Effect.tryPromise({
            try: (signal) =>
              client.send(
                new ListObjectsV2Command({
                  Bucket: bucket,
                  Prefix: `${prefix}${hour}`,
                  ...(token === undefined ? {} : { ContinuationToken: token })
                }),
                { abortSignal: signal }
              ),
            catch: fromSdk("ListObjectsV2")
          })
          for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key)
          token = page.IsTruncated === true ? page.NextContinuationToken : undefined
        } while (token !== undefined)
        return keys
      })

    const list = Effect.fn("FirehoseArchive.list")(function* (range: {
      readonly from: number
      readonly to: number
    }) {
      const first = Math.floor(range.from / hourMillis)
      const last = Math.floor(range.to / hourMillis)
      if (!(Number.isFinite(first) && Number.isFinite(last)) || last < first) {
        return yield* archiveError("InvalidRequest", "the range must run forward in time")
      }
      if (last - first + 1 > maxHours) {
        return yield* archiveError(
          "InvalidRequest",
          `the range spans ${last - first + 1} hours; at most ${maxHours}`
        )
      }
      const hours = Array.from({ length: last - first + 1 }, (_, i) => hourPrefix((first + i) * hourMillis))
      const keys = yield* Effect.forEach(hours, listPrefix, { concurrency: 8 })
      return keys.flat().sort()
    })

    const read = Effect.fn("FirehoseArchive.read")(function* (key: string) {
      const object = yield* Effect.tryPromise({
        try: (signal) =>
          client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal }),
        catch: fromSdk("GetObject")
      })
      const stored = yield* Effect.tryPromise({
        try: () => object.Body?.transformToByteArray() ?? Promise.resolve(new Uint8Array(0)),
        catch: fromSdk("GetObject body")
      })
      const plain = key.endsWith(".gz")
        ? yield* Effect.tryPromise({
            try: () => gunzipAsync(stored),
            catch: (error) => archiveError("Corrupt", `${key} does not gunzip: ${String(error)}`)
          })
        : Buffer.from(stored)
      const records: Array<Uint8Array> = []
      let start = 0
      for (let i = 0; i < plain.length; i++) {
        if (plain[i] === newline) {
          if (i > start) records.push(new Uint8Array(plain.subarray(start, i)))
          start = i + 1
        }
      }
      // Firehose adds no delimiter: an object whose last record has none still ends a record.
      if (start < plain.length) records.push(new Uint8Array(plain.subarray(start)))
      return records
    })

    return FirehoseArchive.of({ bucket, write, list, read })
  })

export const layer = (options: Options): Layer.Layer<FirehoseArchive, never, S3Client> =>
  Layer.effect(FirehoseArchive, make(options))

/**
 * From `Config`: `ARCHIVE_BUCKET`, `ARCHIVE_PREFIX` (default empty), `FIREHOSE_STREAM_NAME`,
 * `ARCHIVE_COMPRESSION` (`GZIP` or `UNCOMPRESSED`, default `UNCOMPRESSED`).
 */
export const layerConfig: Layer.Layer<FirehoseArchive, ConfigError.ConfigError, S3Client> = Layer.effect(
  FirehoseArchive,
  Effect.flatMap(
    Config.all({
      bucket: Config.string("ARCHIVE_BUCKET").pipe(
        Config.validate({
          message: "must be an S3 bucket name (3–63 characters of a-z, 0-9, '.', '-')",
          validation: (name) => /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)
        })
      ),
      prefix: Config.string("ARCHIVE_PREFIX").pipe(Config.withDefault("")),
      deliveryStreamName: Config.nonEmptyString("FIREHOSE_STREAM_NAME"),
      compression: Config.literal(
        "GZIP",
        "UNCOMPRESSED"
      )("ARCHIVE_COMPRESSION").pipe(Config.withDefault("UNCOMPRESSED" as const))
    }),
    make
  )
)
