/**
 * The core `Archive` on S3: the bucket Amazon Data Firehose delivers the stream's backup to. The
 * layout, the record framing and the hour listing are core's (`Archive`: UTC hour prefixes,
 * objects named after their oldest record, newline-delimited records), so this module only moves
 * bytes: `PutObject` (gzipped when the layout says `GZIP`), `ListObjectsV2` paged per hour prefix,
 * `GetObject` (gunzipped when the key ends in `.gz`).
 *
 * `read` reads what Firehose delivered as well as what `write` wrote — the archive can be filled by
 * either — and a failed S3 call becomes an `ArchiveError` whose reason says whether retrying helps.
 */
import { randomUUID } from "node:crypto"
import { promisify } from "node:util"
import { gunzip, gzip } from "node:zlib"
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3"
import { Archive } from "@spillway/core"
import { Config, Effect, Layer, Schema } from "effect"
import * as AwsErrors from "./internal/awsErrors.js"
import { S3Client } from "./S3Client.js"

export type Options = Archive.Layout & {
  /** The S3 bucket the delivery stream writes to. */
  readonly bucket: string
}

/** The reason for an S3 failure. */
export const reasonOf = (failure: AwsErrors.AwsFailure): Archive.ErrorReason => {
  if (failure.name === "SlowDown" || failure.status === 429 || failure.status === 503) return "Throttled"
  if (failure.name === "NoSuchKey" || failure.name === "NoSuchBucket" || failure.name === "NotFound")
    return "NotFound"
  if (failure.status === 403 || AwsErrors.authErrorNames.has(failure.name)) return "AccessDenied"
  if (failure.status === undefined || failure.status >= 500) return "Unavailable"
  return "InvalidRequest"
}

const archiveError = (reason: Archive.ErrorReason, message: string, cause?: unknown) =>
  new Archive.ArchiveError({ reason, message, ...(cause === undefined ? {} : { cause }) })

const fromSdk =
  (operation: string) =>
  (error: unknown): Archive.ArchiveError => {
    const failure = AwsErrors.inspect(error)
    return archiveError(reasonOf(failure), `${operation}: ${AwsErrors.describe(failure)}`, error)
  }

const gzipAsync = promisify(gzip)
const gunzipAsync = promisify(gunzip)

// A plain `Uint8Array` over the same bytes: `decodeObject` slices it, and a Buffer's `slice` would
// return views into Node's shared pool instead of copies.
const plainBytes = (bytes: Uint8Array): Uint8Array =>
  new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)

export const make = (options: Options): Effect.Effect<Archive.Service, never, S3Client> =>
  Effect.gen(function* () {
    const client = yield* S3Client
    const { bucket } = options
    const gzipped = options.compression === "GZIP"

    const write = Effect.fn("FirehoseArchive.write")(function* (
      records: ReadonlyArray<Archive.ArchivedRecord>
    ) {
      const plain = yield* Effect.fromResult(Archive.encodeObject(records))
      const body = gzipped
        ? yield* Effect.tryPromise({
            try: () => gzipAsync(plain),
            catch: (error) => archiveError("InvalidRequest", `gzip: ${String(error)}`)
          })
        : plain
      const key = Archive.objectKey(options, Archive.oldestArrival(records), randomUUID())
      yield* Effect.tryPromise({
        try: (signal) =>
          client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: key,
              Body: body,
              ContentType: "application/x-ndjson",
              ...(gzipped ? { ContentEncoding: "gzip" } : {})
            }),
            { abortSignal: signal }
          ),
        catch: fromSdk("PutObject")
      })
      return key
    })

    const listPrefix = (prefix: string) =>
      Effect.gen(function* () {
        const keys: Array<string> = []
        let token: string | undefined
        do {
          const page = yield* Effect.tryPromise({
            try: (signal) =>
              client.send(
                new ListObjectsV2Command({
                  Bucket: bucket,
                  Prefix: prefix,
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

    const list = Effect.fn("FirehoseArchive.list")(function* (range: Archive.Range) {
      const prefixes = yield* Effect.fromResult(Archive.hourPrefixes(range, options.prefix))
      const keys = yield* Effect.forEach(prefixes, listPrefix, { concurrency: 8 })
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
      if (!key.endsWith(".gz")) return Archive.decodeObject(plainBytes(stored))
      const plain = yield* Effect.tryPromise({
        try: () => gunzipAsync(stored),
        catch: (error) => archiveError("Corrupt", `${key} does not gunzip: ${String(error)}`, error)
      })
      return Archive.decodeObject(plainBytes(plain))
    })

    return Archive.Archive.of({ bucket, write, list, read })
  })

export const layer = (options: Options): Layer.Layer<Archive.Archive, never, S3Client> =>
  Layer.effect(Archive.Archive, make(options))

/**
 * From `Config`: `ARCHIVE_BUCKET`, `ARCHIVE_PREFIX` (default empty), `FIREHOSE_STREAM_NAME`,
 * `ARCHIVE_COMPRESSION` (`GZIP` or `UNCOMPRESSED`, default `UNCOMPRESSED`).
 */
export const layerConfig: Layer.Layer<Archive.Archive, Config.ConfigError, S3Client> = Layer.effect(
  Archive.Archive,
  Effect.flatMap(
    Config.all({
      bucket: Config.schema(
        Schema.String.check(
          Schema.isPattern(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
            message: "must be an S3 bucket name (3–63 characters of a-z, 0-9, '.', '-')"
          })
        ),
        "ARCHIVE_BUCKET"
      ),
      prefix: Config.String("ARCHIVE_PREFIX").pipe(Config.withDefault("")),
      deliveryStreamName: Config.NonEmptyString("FIREHOSE_STREAM_NAME"),
      compression: Config.Literals(["GZIP", "UNCOMPRESSED"], "ARCHIVE_COMPRESSION").pipe(
        Config.withDefault("UNCOMPRESSED")
      )
    }),
    make
  )
)
