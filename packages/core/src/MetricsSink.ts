/**
 * Metrics sinks: where the forwarder sends metric series (Datadog's metrics API v2 in production,
 * `@spillway/aws`' `DatadogMetricsSink`; an in-memory intake in `@spillway/memory`). Every
 * backend runs `@spillway/testing`'s `metricsSinkSuite`.
 *
 * Contract: `submit` sends one payload's worth of series (at most `limits`, which `chunkSeries`
 * packs) and either succeeds — every point in it accepted — or fails whole with a typed
 * `MetricsSinkError` saying why and whether a retry can help. A sink never answers success for
 * a payload it did not deliver: every non-2xx answer is a failure (the Datadog forwarder's
 * swallowed HTTP errors, #1129, are what this rules out).
 *
 * Limits (Datadog metrics API v2, `POST /api/v2/series`): 512,000 bytes compressed and
 * 5,242,880 bytes decompressed per payload (the English reference page; translated and v1 pages
 * print larger, older limits — the smaller pair is safe everywhere), and 10,000 points per
 * payload, the Datadog Agent's `serializer_max_series_points_per_payload` ("do not change …
 * your payloads will get dropped by Datadog's intake"). Points are accepted only when their
 * timestamp is at most 10 minutes ahead and at most 1 hour behind the intake's clock.
 */
import { Context, type Effect, Schema } from "effect"

/** How points of a series combine: counts and rates add up, a gauge keeps its last value. */
export type Kind = "count" | "rate" | "gauge"

export interface Point {
  /** Epoch seconds (whole). */
  readonly timestamp: number
  readonly value: number
}

export interface Series {
  readonly metric: string
  readonly kind: Kind
  /** `key:value` (or bare) tags, sorted and without repeats once aggregated. */
  readonly tags: ReadonlyArray<string>
  readonly points: ReadonlyArray<Point>
  /** Seconds a count or rate point covers, when known. */
  readonly interval?: number
  readonly unit?: string
}

/** One metric value as a metric line carries it, before aggregation. */
export interface Sample {
  readonly metric: string
  readonly kind: Kind
  readonly value: number
  /** Epoch seconds; fractions are floored when aggregated. */
  readonly timestamp: number
  readonly tags: ReadonlyArray<string>
}

export interface Limits {
  readonly maxCompressedBytes: number
  readonly maxUncompressedBytes: number
  readonly maxPointsPerPayload: number
}

export const datadogV2Limits: Limits = {
  maxCompressedBytes: 512_000,
  maxUncompressedBytes: 5_242_880,
  maxPointsPerPayload: 10_000
}

/** The intake's window for point timestamps. */
export const acceptedWindow = { pastSeconds: 3600, futureSeconds: 600 } as const

export const ErrorReason = Schema.Literals([
  /** 429: the intake asks to slow down; `retryAfterMillis` says for how long when it told. */
  "Throttled",
  /** 5xx, 408, a timeout, no answer, or the API key could not be read: nothing was accepted. */
  "Unavailable",
  /** 413, or over the limits before sending: split the payload and send the halves. */
  "TooLarge",
  /** 400 and other 4xx: the payload itself is refused. */
  "InvalidRequest",
  /** 401/403: the API key is refused. */
  "AccessDenied"
])
export type ErrorReason = typeof ErrorReason.Type

const retryable: ReadonlySet<ErrorReason> = new Set(["Throttled", "Unavailable"])

/** The whole payload failed: no point in it can be assumed accepted. */
export class MetricsSinkError extends Schema.TaggedError<MetricsSinkError>()("MetricsSinkError", {
  sink: Schema.String,
  reason: ErrorReason,
  message: Schema.String,
  /** The HTTP status, when there was an answer. */
  status: Schema.optionalKey(Schema.Int),
  /** How long the intake asked to wait (`X-RateLimit-Reset`), when it did. */
  retryAfterMillis: Schema.optionalKey(Schema.Number),
  cause: Schema.optionalKey(Schema.Defect())
}) {
  get isRetryable(): boolean {
    return retryable.has(this.reason)
  }
}

export interface Receipt {
  readonly points: number
  /** What the intake said beside accepting (Datadog's `errors` in a 202: accepted is not processed). */
  readonly warnings: ReadonlyArray<string>
}

export interface Service {
  /** Names the sink in metrics, logs and errors. */
  readonly name: string
  readonly limits: Limits
  readonly submit: (series: ReadonlyArray<Series>) => Effect.Effect<Receipt, MetricsSinkError>
}

export class MetricsSink extends Context.Service<MetricsSink, Service>()("spillway/MetricsSink") {}

const typeCode: Readonly<Record<Kind, number>> = { count: 1, rate: 2, gauge: 3 }

/** A series as the v2 intake takes it (`MetricSeries`: `type` 1 count, 2 rate, 3 gauge). */
export const toV2Series = (series: Series) => ({
  metric: series.metric,
  type: typeCode[series.kind],
  points: series.points.map((p) => ({ timestamp: p.timestamp, value: p.value })),
  ...(series.tags.length === 0 ? {} : { tags: [...series.tags] }),
  ...(series.interval === undefined ? {} : { interval: series.interval }),
  ...(series.unit === undefined ? {} : { unit: series.unit })
})

/** The v2 request body (`MetricPayload`) for `series`, as JSON text. */
export const encodeV2Payload = (series: ReadonlyArray<Series>): string =>
  JSON.stringify({ series: series.map(toV2Series) })

export const countPoints = (series: ReadonlyArray<Series>): number =>
  series.reduce((n, s) => n + s.points.length, 0)

const keyOf = (metric: string, kind: Kind, tags: ReadonlyArray<string>) =>
  `${kind}\u0000${metric}\u0000${tags.join("\u0000")}`

/** Tags sorted and without repeats, so two lines with the same tags in another order are one series. */
export const canonicalTags = (tags: ReadonlyArray<string>): ReadonlyArray<string> => [...new Set(tags)].sort()

/**
 * Samples into series: one series per metric, kind and tag set, one point per whole second,
 * counts and rates summed, a gauge keeping the last sample given. Series come out in the order
 * their first sample came in; points in time order.
 */
export const aggregate = (samples: Iterable<Sample>): ReadonlyArray<Series> => {
  const series = new Map<
    string,
    { metric: string; kind: Kind; tags: ReadonlyArray<string>; points: Map<number, number> }
  >()
  for (const sample of samples) {
    const tags = canonicalTags(sample.tags)
    const key = keyOf(sample.metric, sample.kind, tags)
    let entry = series.get(key)
    if (entry === undefined) {
      entry = { metric: sample.metric, kind: sample.kind, tags, points: new Map() }
      series.set(key, entry)
    }
    const timestamp = Math.floor(sample.timestamp)
    const before = entry.points.get(timestamp)
    entry.points.set(
      timestamp,
      sample.kind === "gauge" || before === undefined ? sample.value : before + sample.value
    )
  }
  return [...series.values()].map((s) => ({
    metric: s.metric,
    kind: s.kind,
    tags: s.tags,
    points: [...s.points].sort(([a], [b]) => a - b).map(([timestamp, value]) => ({ timestamp, value }))
  }))
}

/** Bytes a series adds to an encoded payload (its JSON and the comma before it). */
const encodedSize = (series: Series): number => Buffer.byteLength(JSON.stringify(toV2Series(series))) + 1

/** Bytes a point adds to its series' JSON (its own and the comma before it). */
const pointSize = (point: Point): number =>
  Buffer.byteLength(JSON.stringify({ timestamp: point.timestamp, value: point.value })) + 1

const envelopeBytes = Buffer.byteLength('{"series":[]}')

/**
 * Packs series into payloads within `limits`: at most `maxPointsPerPayload` points and
 * `maxUncompressedBytes` of JSON each, counted exactly as `encodeV2Payload` writes them; a series
 * that does not fit is cut into pieces (same metric and tags) across payloads. Only a single
 * point whose series alone is over the byte limit gets a payload over it (the sink refuses it
 * with `TooLarge`, rather than it vanishing). The compressed size is only known once
 * compressed: a sink refuses a payload over it with `TooLarge`, and the sender splits it.
 */
export const chunkSeries = (
  series: ReadonlyArray<Series>,
  limits: Limits = datadogV2Limits
): Array<Array<Series>> => {
  const chunks: Array<Array<Series>> = []
  let current: Array<Series> = []
  let points = 0
  let bytes = envelopeBytes
  const flush = () => {
    if (current.length > 0) chunks.push(current)
    current = []
    points = 0
    bytes = envelopeBytes
  }
  for (const s of series) {
    const overhead = encodedSize({ ...s, points: [] })
    let piece: Array<Point> = []
    let pieceBytes = overhead
    const close = () => {
      if (piece.length === 0) return
      current.push({ ...s, points: piece })
      points += piece.length
      bytes += pieceBytes
      piece = []
      pieceBytes = overhead
    }
    for (const point of s.points) {
      const size = pointSize(point)
      const over =
        points + piece.length + 1 > limits.maxPointsPerPayload ||
        bytes + pieceBytes + size > limits.maxUncompressedBytes
      if (over && (piece.length > 0 || current.length > 0)) {
        close()
        flush()
      }
      piece.push(point)
      pieceBytes += size
    }
    close()
  }
  flush()
  return chunks
}

/** Splits a payload in two halves by points (for a `TooLarge` answer); one point cannot be split. */
export const halve = (series: ReadonlyArray<Series>): readonly [Array<Series>, Array<Series>] | undefined => {
  const total = countPoints(series)
  if (total <= 1) return undefined
  const first: Array<Series> = []
  const second: Array<Series> = []
  let taken = 0
  for (const s of series) {
    const room = Math.ceil(total / 2) - taken
    if (room <= 0) second.push(s)
    else if (s.points.length <= room) {
      first.push(s)
      taken += s.points.length
    } else {
      first.push({ ...s, points: s.points.slice(0, room) })
      second.push({ ...s, points: s.points.slice(room) })
      taken += room
    }
  }
  return [first, second]
}

/** Splits series by whether each point is inside the intake's window at `nowSeconds`. */
export const splitByWindow = (
  series: ReadonlyArray<Series>,
  nowSeconds: number,
  window: { readonly pastSeconds: number; readonly futureSeconds: number } = acceptedWindow
): { readonly current: ReadonlyArray<Series>; readonly outside: ReadonlyArray<Series> } => {
  const current: Array<Series> = []
  const outside: Array<Series> = []
  for (const s of series) {
    const inside = s.points.filter(
      (p) =>
        p.timestamp >= nowSeconds - window.pastSeconds && p.timestamp <= nowSeconds + window.futureSeconds
    )
    if (inside.length === s.points.length) current.push(s)
    else {
      if (inside.length > 0) current.push({ ...s, points: inside })
      outside.push({ ...s, points: s.points.filter((p) => !inside.includes(p)) })
    }
  }
  return { current, outside }
}
