/**
 * The backup archive: what Amazon Data Firehose delivers from the stream to S3, read back by the
 * tools that rebuild the index after a disaster. One service, two implementations: S3
 * (`@spillway/aws` `FirehoseArchive`) and memory (`@spillway/memory` `MemoryArchive`).
 *
 * The layout is Firehose's own (docs/aws-behaviour.md §5.4–5.5), so an archive filled by the real Firehose and
 * one filled by Spillway's local emulation read the same way:
 * - objects under UTC hour prefixes `<prefix>YYYY/MM/dd/HH/`, named
 *   `<delivery stream>-<version>-YYYY-MM-dd-HH-mm-ss-<uuid>[.gz]` after the arrival time of the
 *   **oldest** record they hold (so one object can hold records of the next hour too);
 * - records concatenated in arrival order. Firehose inserts no delimiter, so Spillway ends each
 *   record with a newline (as the `AppendDelimiterToRecord` processor would) and reads objects as
 *   newline-delimited records; a record containing a newline is refused on write, since it could
 *   not be read back whole, and so is an empty one. Stream records are JSON envelopes, which are
 *   never empty and never contain a raw newline.
 *
 * Firehose is at-least-once: the same record can be in two objects, so readers deduplicate by
 * record id.
 */
import { Context, Effect, Result, Schema } from "effect"
import * as Telemetry from "./Telemetry.js"

export const ErrorReason = Schema.Literals([
  "Throttled",
  "Unavailable",
  "NotFound",
  "AccessDenied",
  "InvalidRequest",
  /** An object that does not decompress or decode. */
  "Corrupt"
])
export type ErrorReason = typeof ErrorReason.Type

const retryable: ReadonlySet<ErrorReason> = new Set(["Throttled", "Unavailable"])

export class ArchiveError extends Schema.TaggedError<ArchiveError>()("ArchiveError", {
  reason: ErrorReason,
  message: Schema.String,
  /** What the backend threw or answered, when there was something (an SDK error, say). */
  cause: Schema.optionalKey(Schema.Defect())
}) {
  get isRetryable(): boolean {
    return retryable.has(this.reason)
  }
}

export interface ArchivedRecord {
  readonly data: Uint8Array
  /** Epoch milliseconds at which the record arrived in the stream (names the object's hour). */
  readonly arrivedAt: number
}

export interface Range {
  /** Epoch milliseconds; the hour holding it is the first listed. */
  readonly from: number
  /** Epoch milliseconds; the hour holding it is the last listed. */
  readonly to: number
}

export interface Service {
  /** Where the archive lives (an S3 bucket name, or a name for the in-memory one). */
  readonly bucket: string
  /** Writes one object holding `records`, in order; returns its key. */
  readonly write: (records: ReadonlyArray<ArchivedRecord>) => Effect.Effect<string, ArchiveError>
  /** Keys of the objects under the hour prefixes from `range.from` to `range.to` (both inclusive), in key order. */
  readonly list: (range: Range) => Effect.Effect<ReadonlyArray<string>, ArchiveError>
  /** The records of one object, in order. */
  readonly read: (key: string) => Effect.Effect<ReadonlyArray<Uint8Array>, ArchiveError>
}

export class Archive extends Context.Service<Archive, Service>()("spillway/Archive") {}

/** How objects are named. */
export interface Layout {
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

export const hourMillis = 3_600_000

/** A listing over more hours than a year is a mistake in the range, not a plan. */
export const maxListedHours = 24 * 366

/** `YYYY/MM/dd/HH/` of an instant, in UTC. */
export const hourPrefix = (at: number): string => {
  const d = new Date(at)
  return `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${pad(d.getUTCHours())}/`
}

/** The object key Firehose gives an object whose oldest record arrived at `oldest`. */
export const objectKey = (layout: Layout, oldest: number, uuid: string): string => {
  const d = new Date(oldest)
  const stamp = [
    d.getUTCFullYear(),
    pad(d.getUTCMonth() + 1),
    pad(d.getUTCDate()),
    pad(d.getUTCHours()),
    pad(d.getUTCMinutes()),
    pad(d.getUTCSeconds())
  ].join("-")
  const extension = layout.compression === "GZIP" ? ".gz" : ""
  return `${layout.prefix ?? ""}${hourPrefix(oldest)}${layout.deliveryStreamName}-${layout.deliveryStreamVersion ?? 1}-${stamp}-${uuid}${extension}`
}

/**
 * The full prefixes (`layout.prefix` + hour) of every hour in `range`, oldest first; an
 * `InvalidRequest` for a range that runs backwards, is not finite, or spans more than a year.
 */
export const hourPrefixes = (
  range: Range,
  prefix = ""
): Result.Result<ReadonlyArray<string>, ArchiveError> => {
  const first = Math.floor(range.from / hourMillis)
  const last = Math.floor(range.to / hourMillis)
  if (!(Number.isFinite(first) && Number.isFinite(last)) || range.to < range.from) {
    return Result.fail(
      new ArchiveError({ reason: "InvalidRequest", message: "the range must run forward in time" })
    )
  }
  if (last - first + 1 > maxListedHours) {
    return Result.fail(
      new ArchiveError({
        reason: "InvalidRequest",
        message: `the range spans ${last - first + 1} hours; at most ${maxListedHours}`
      })
    )
  }
  return Result.succeed(
    Array.from({ length: last - first + 1 }, (_, i) => `${prefix}${hourPrefix((first + i) * hourMillis)}`)
  )
}

const newline = 0x0a

/**
 * Why a record cannot be archived in this framing (`undefined` when it can): an empty record
 * would read back as nothing, one containing a newline as two records.
 */
export const unframeable = (data: Uint8Array): string | undefined =>
  data.length === 0
    ? "is empty and would not be read back"
    : data.includes(newline)
      ? "contains a newline and could not be read back whole"
      : undefined

/**
 * The bytes of an object holding `records`, each followed by a newline; an `InvalidRequest` for no
 * records or a record `unframeable` refuses.
 */
export const encodeObject = (
  records: ReadonlyArray<ArchivedRecord>
): Result.Result<Uint8Array, ArchiveError> => {
  if (records.length === 0) {
    return Result.fail(
      new ArchiveError({ reason: "InvalidRequest", message: "an archive object needs at least one record" })
    )
  }
  let size = 0
  for (const [i, record] of records.entries()) {
    const problem = unframeable(record.data)
    if (problem !== undefined) {
      return Result.fail(new ArchiveError({ reason: "InvalidRequest", message: `record ${i} ${problem}` }))
    }
    size += record.data.length + 1
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const record of records) {
    bytes.set(record.data, at)
    at += record.data.length
    bytes[at++] = newline
  }
  return Result.succeed(bytes)
}

/**
 * The records of an object's (decompressed) bytes: newline-delimited, empty lines skipped; a last
 * record without a newline still counts (Firehose adds no delimiter of its own).
 */
export const decodeObject = (bytes: Uint8Array): ReadonlyArray<Uint8Array> => {
  const records: Array<Uint8Array> = []
  let start = 0
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === newline) {
      if (i > start) records.push(bytes.slice(start, i))
      start = i + 1
    }
  }
  if (start < bytes.length) records.push(bytes.slice(start))
  return records
}

/** The arrival time an object's records are filed under: the oldest of them. */
export const oldestArrival = (records: ReadonlyArray<ArchivedRecord>): number =>
  records.reduce((oldest, r) => Math.min(oldest, r.arrivedAt), Number.POSITIVE_INFINITY)

export interface ArchiveContents {
  /** The envelopes of every object in the range, object by object, in key then record order. */
  readonly envelopes: ReadonlyArray<Telemetry.TelemetryEnvelope>
  /** Records that are not envelopes, with the object holding them and why. */
  readonly undecodable: ReadonlyArray<{
    readonly key: string
    readonly index: number
    readonly reason: string
  }>
  readonly objects: number
}

/**
 * Reads back every record filed in the hours of `range`, as the stream's envelopes. What the
 * disaster-recovery replay and the backup checks start from. Duplicates (Firehose is
 * at-least-once) are kept: deduplicate by `record.id`.
 */
export const readEnvelopes = Effect.fn("Archive.readEnvelopes")(function* (range: Range) {
  const archive = yield* Archive
  const keys = yield* archive.list(range)
  const envelopes: Array<Telemetry.TelemetryEnvelope> = []
  const undecodable: Array<{ key: string; index: number; reason: string }> = []
  for (const key of keys) {
    for (const [index, data] of (yield* archive.read(key)).entries()) {
      const decoded = Telemetry.decodeEnvelope(data)
      if (Result.isSuccess(decoded)) envelopes.push(decoded.success)
      else undecodable.push({ key, index, reason: decoded.failure.reason })
    }
  }
  return { envelopes, undecodable, objects: keys.length } satisfies ArchiveContents
})
