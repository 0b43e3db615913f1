/**
 * The forwarder's spool on S3 (`MetricSpool` in core): one gzipped JSON object per entry under
 * `<prefix>pending/` or `<prefix>parked/`, named `YYYY/MM/DD/HH/<epoch ms>-<uuid>.json.gz` by the
 * time it was stored, so `ListObjectsV2` (which answers in key order) lists the oldest first.
 *
 * `put` returns once `PutObject` answered: S3 stores the object durably before it answers, which
 * is what lets the forwarder acknowledge an invocation whose points the intake refused. Every SDK
 * failure becomes a `MetricSpoolError` whose reason says whether a retry can help (503 SlowDown
 * is `Throttled`); an object that does not gunzip or decode is `Corrupt`.
 *
 * Configuration (`layerConfig`): `SPOOL_BUCKET`, `SPOOL_PREFIX` (default `metric-spool/`). The
 * functions need `s3:PutObject` (forwarder, retrier), `s3:ListBucket`, `s3:GetObject` and
 * `s3:DeleteObject` (retrier) on the prefix. A lifecycle rule should expire `parked/` objects only
 * after a person had time to look at them (the CDK description sets 90 days) and never
 * `pending/` ones.
 */
import { randomUUID } from "node:crypto"
import { promisify } from "node:util"
import { gunzip, gzipSync } from "node:zlib"
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand
} from "@aws-sdk/client-s3"
import { MetricSpool } from "@spillway/core"
import { Clock, Config, Effect, Layer, Result, Schema, SchemaParser } from "effect"
import * as AwsErrors from "./internal/awsErrors.js"
import { S3Client } from "./S3Client.js"

const gunzipAsync = promisify(gunzip)

export interface Options {
  readonly bucket: string
  /** Prepended to `pending/` and `parked/`; end it with `/`. @default "metric-spool/" */
  readonly prefix?: string
}

export const reasonOf = (failure: AwsErrors.AwsFailure): MetricSpool.ErrorReason => {
  if (failure.name === "SlowDown" || failure.status === 429 || failure.status === 503) return "Throttled"
  if (failure.name === "NoSuchKey" || failure.name === "NoSuchBucket" || failure.name === "NotFound")
    return "NotFound"
  if (failure.status === 403 || AwsErrors.authErrorNames.has(failure.name)) return "AccessDenied"
  if (failure.status === undefined || failure.status >= 500) return "Unavailable"
  return "InvalidRequest"
}

const fromSdk =
  (operation: string) =>
  (error: unknown): MetricSpool.MetricSpoolError => {
    const failure = AwsErrors.inspect(error)
    return new MetricSpool.MetricSpoolError({
      reason: reasonOf(failure),
      message: `${operation}: ${AwsErrors.describe(failure)}`,
      cause: error
    })
  }

const decode = SchemaParser.decodeUnknownResult(MetricSpool.StoredEntryJson)

export const make = (options: Options): Effect.Effect<MetricSpool.Service, never, S3Client> =>
  Effect.gen(function* () {
    const client = yield* S3Client
    const { bucket } = options
    const prefix = options.prefix ?? "metric-spool/"

    const put = Effect.fn("S3MetricSpool.put")(function* (
      entry: MetricSpool.Entry,
      area: MetricSpool.Area = "pending"
    ) {
      const now = yield* Clock.currentTimeMillis
      const key = MetricSpool.entryKey(prefix, area, now, randomUUID())
      const body = gzipSync(Buffer.from(MetricSpool.encodeEntry(entry), "utf8"))
      yield* Effect.tryPromise({
        try: (signal) =>
          client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: key,
              Body: body,
              ContentType: "application/json",
              ContentEncoding: "gzip"
            }),
            { abortSignal: signal }
          ),
        catch: fromSdk("PutObject")
      })
      return key
    })

    const list = Effect.fn("S3MetricSpool.list")(function* (limit: number) {
      const page = yield* Effect.tryPromise({
        try: (signal) =>
          client.send(
            new ListObjectsV2Command({
              Bucket: bucket,
              Prefix: `${prefix}pending/`,
              MaxKeys: Math.max(1, Math.min(1000, limit))
            }),
            { abortSignal: signal }
          ),
        catch: fromSdk("ListObjectsV2")
      })
      return (page.Contents ?? [])
        .flatMap((object) => (object.Key === undefined ? [] : [object.Key]))
        .sort()
        .map((key) => ({ key, spooledAt: MetricSpool.spooledAtOf(key) ?? 0 }))
    })

    const read = Effect.fn("S3MetricSpool.read")(function* (key: string) {
      const object = yield* Effect.tryPromise({
        try: (signal) =>
          client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal }),
        catch: fromSdk("GetObject")
      })
      const stored = yield* Effect.tryPromise({
        try: () => object.Body?.transformToByteArray() ?? Promise.resolve(new Uint8Array(0)),
        catch: fromSdk("GetObject body")
      })
      const text = yield* Effect.tryPromise({
        try: () => gunzipAsync(stored).then((plain) => plain.toString("utf8")),
        catch: (error) =>
          new MetricSpool.MetricSpoolError({
            reason: "Corrupt",
            message: `${key} does not gunzip: ${String(error)}`,
            cause: error
          })
      })
      const decoded = decode(text)
      if (Result.isFailure(decoded)) {
        return yield* new MetricSpool.MetricSpoolError({
          reason: "Corrupt",
          message: `${key} does not decode as a spool entry`
        })
      }
      const { v: _, ...entry } = decoded.success
      return entry as MetricSpool.Entry
    })

    const remove = Effect.fn("S3MetricSpool.remove")(function* (key: string) {
      yield* Effect.tryPromise({
        try: (signal) =>
          client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal }),
        catch: fromSdk("DeleteObject")
      })
    })

    return MetricSpool.MetricSpool.of({ location: `s3://${bucket}/${prefix}`, put, list, read, remove })
  })

export const layer = (options: Options): Layer.Layer<MetricSpool.MetricSpool, never, S3Client> =>
  Layer.effect(MetricSpool.MetricSpool, make(options))

/** From `Config`: `SPOOL_BUCKET`, `SPOOL_PREFIX` (default `metric-spool/`). */
export const layerConfig: Layer.Layer<MetricSpool.MetricSpool, Config.ConfigError, S3Client> = Layer.effect(
  MetricSpool.MetricSpool,
  Effect.flatMap(
    Config.all({
      bucket: Config.schema(
        Schema.String.check(
          Schema.isPattern(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
            message: "must be an S3 bucket name (3–63 characters of a-z, 0-9, '.', '-')"
          })
        ),
        "SPOOL_BUCKET"
      ),
      prefix: Config.String("SPOOL_PREFIX").pipe(Config.withDefault("metric-spool/"))
    }),
    make
  )
)
