/**
 * The forwarder's spool: where metric series the sink would not take are kept, durably, before
 * the invocation that read them acknowledges — an S3 prefix in production (`@spillway/aws`'
 * `S3MetricSpool`), a map in memory (`@spillway/memory`'s `MemoryMetricSpool`). The retrier
 * (`retrySpool`) reads it on a schedule and sends what it holds until it lands.
 *
 * Contract:
 * - `put` returns only once the entry is stored (S3 `PutObject` answered 200); an entry is never
 *   changed afterwards: progress on it is a new entry, then the removal of the old one, so a
 *   crash in between sends some points twice, never none;
 * - `list` answers pending entries oldest first (their keys sort by spool time);
 * - entries the intake can never take (points outside its one-hour window, a payload it refuses
 *   for its content) are put in the `parked` area: kept, counted and alarmed on, never retried
 *   automatically, never silently dropped.
 */
import { Context, type Effect, Schema } from "effect"
import type { Series } from "./MetricsSink.js"

export type Area = "pending" | "parked"

export interface Entry {
  readonly series: ReadonlyArray<Series>
  /** Epoch milliseconds at which these points first failed to send. */
  readonly firstFailedAt: number
  /** Sends tried so far (across invocations). */
  readonly attempts: number
  /** Why the last send failed. */
  readonly reason: string
  /** Where the points came from (log group and stream), for a person reading the spool. */
  readonly source?: string
}

export interface Item {
  readonly key: string
  /** Epoch milliseconds at which the entry was stored. */
  readonly spooledAt: number
}

export const ErrorReason = Schema.Literals([
  "Throttled",
  "Unavailable",
  "NotFound",
  "AccessDenied",
  "InvalidRequest",
  /** An object that does not gunzip or decode as an entry. */
  "Corrupt"
])
export type ErrorReason = typeof ErrorReason.Type

const retryable: ReadonlySet<ErrorReason> = new Set(["Throttled", "Unavailable"])

export class MetricSpoolError extends Schema.TaggedError<MetricSpoolError>()("MetricSpoolError", {
  reason: ErrorReason,
  message: Schema.String,
  cause: Schema.optionalKey(Schema.Defect())
}) {
  get isRetryable(): boolean {
    return retryable.has(this.reason)
  }
}

export interface Service {
  /** Where the spool lives (`s3://bucket/prefix`, or a name for the in-memory one). */
  readonly location: string
  readonly put: (entry: Entry, area?: Area) => Effect.Effect<string, MetricSpoolError>
  /** Up to `limit` pending entries, oldest first. */
  readonly list: (limit: number) => Effect.Effect<ReadonlyArray<Item>, MetricSpoolError>
  readonly read: (key: string) => Effect.Effect<Entry, MetricSpoolError>
  readonly remove: (key: string) => Effect.Effect<void, MetricSpoolError>
}

export class MetricSpool extends Context.Service<MetricSpool, Service>()("spillway/MetricSpool") {}

// ---- the stored form -------------------------------------------------------------------------------

const Point = Schema.Struct({ timestamp: Schema.Number, value: Schema.Number })

const StoredSeries = Schema.Struct({
  metric: Schema.String,
  kind: Schema.Literals(["count", "rate", "gauge"]),
  tags: Schema.Array(Schema.String),
  points: Schema.Array(Point),
  interval: Schema.optionalKey(Schema.Number),
  unit: Schema.optionalKey(Schema.String)
})

/** An entry as it is stored (JSON, gzipped by the backends that store bytes). */
export const StoredEntry = Schema.Struct({
  v: Schema.Literal(1),
  series: Schema.Array(StoredSeries),
  firstFailedAt: Schema.Number,
  attempts: Schema.Int,
  reason: Schema.String,
  source: Schema.optionalKey(Schema.String)
})

export const StoredEntryJson = Schema.fromJsonString(StoredEntry)

export const encodeEntry = (entry: Entry): string =>
  JSON.stringify({
    v: 1,
    series: entry.series,
    firstFailedAt: entry.firstFailedAt,
    attempts: entry.attempts,
    reason: entry.reason,
    ...(entry.source === undefined ? {} : { source: entry.source })
  })

const pad = (n: number, width: number) => String(n).padStart(width, "0")

/**
 * The key of an entry stored at `at`: `<prefix><area>/YYYY/MM/DD/HH/<epoch ms, 15 digits>-<unique>.json.gz`,
 * so keys sort by spool time within an area and a listing answers oldest first.
 */
export const entryKey = (prefix: string, area: Area, at: number, unique: string): string => {
  const d = new Date(at)
  const hour = `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1, 2)}/${pad(d.getUTCDate(), 2)}/${pad(d.getUTCHours(), 2)}`
  return `${prefix}${area}/${hour}/${pad(Math.max(0, Math.floor(at)), 15)}-${unique}.json.gz`
}

/** The spool time written into a key by `entryKey`, or `undefined` for a key it did not write. */
export const spooledAtOf = (key: string): number | undefined => {
  const match = /\/(\d{15})-[^/]+\.json\.gz$/.exec(key)
  return match === null ? undefined : Number(match[1])
}
