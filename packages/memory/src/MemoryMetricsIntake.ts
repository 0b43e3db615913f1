/**
 * An in-memory metrics intake behind the `MetricsSink` tag: what the Datadog metrics API v2 does
 * with a payload, for tests, local runs and the simulator.
 *
 * It enforces what the real intake enforces (`MetricsSink.datadogV2Limits`): a payload over the
 * points, uncompressed or compressed (gzip) byte limit is refused whole with `TooLarge` (413),
 * and points outside the intake's window (more than an hour old, ten minutes ahead) are accepted
 * with the request but dropped, with a warning, as the real intake drops them — counted in
 * `stats.droppedOutsideWindow` so a test can prove the forwarder never sends one. Faults:
 * `failNext` (the next calls answer 429 with a reset, 5xx, 413, 403 …), `startOutage`, and a
 * latency per request (slept on the caller's clock), which the simulator uses for the
 * 100–200 ms of a real send.
 */
import { gzipSync } from "node:zlib"
import { MetricsSink } from "@spillway/core"
import { Clock, Context, type Duration, Effect, Layer } from "effect"

export interface Options {
  /** @default "memory-intake" */
  readonly name?: string
  /** @default MetricsSink.datadogV2Limits */
  readonly limits?: MetricsSink.Limits
  /** Time each request takes, drawn per request. @default none */
  readonly latency?: Effect.Effect<Duration.Input>
}

/** An accepted point with the instant (epoch ms) the intake accepted it. */
export interface AcceptedPoint {
  readonly metric: string
  readonly kind: MetricsSink.Kind
  readonly tags: ReadonlyArray<string>
  readonly timestamp: number
  readonly value: number
  readonly acceptedAt: number
}

export interface Stats {
  readonly requests: number
  readonly accepted: number
  readonly refused: number
  readonly points: number
  readonly droppedOutsideWindow: number
}

export interface Handle extends MetricsSink.Service {
  /** Every accepted point, in acceptance order (a point sent twice is here twice). */
  readonly points: Effect.Effect<ReadonlyArray<AcceptedPoint>>
  readonly stats: Effect.Effect<Stats>
  /** The next `count` calls fail with `reason` (429 with `retryAfterMillis`, 5xx, …), then calls go through again. */
  readonly failNext: (
    count: number,
    reason: MetricsSink.ErrorReason,
    options?: { readonly retryAfterMillis?: number; readonly status?: number }
  ) => Effect.Effect<void>
  /** Every call fails `Unavailable` (503) until `endOutage` or the clock reaches `until`. */
  readonly startOutage: (options?: { readonly until?: number }) => Effect.Effect<void>
  readonly endOutage: Effect.Effect<void>
  readonly clearFaults: Effect.Effect<void>
}

export class MemoryMetricsIntake extends Context.Service<MemoryMetricsIntake, Handle>()(
  "spillway/memory/MemoryMetricsIntake"
) {}

const statusOf: Readonly<Record<MetricsSink.ErrorReason, number>> = {
  Throttled: 429,
  Unavailable: 503,
  TooLarge: 413,
  InvalidRequest: 400,
  AccessDenied: 403
}

export const make = (options: Options = {}): Effect.Effect<Handle> =>
  Effect.sync(() => {
    const name = options.name ?? "memory-intake"
    const limits = options.limits ?? MetricsSink.datadogV2Limits
    const accepted: Array<AcceptedPoint> = []
    const stats = { requests: 0, accepted: 0, refused: 0, points: 0, droppedOutsideWindow: 0 }
    const planned: Array<{ reason: MetricsSink.ErrorReason; retryAfterMillis?: number; status?: number }> = []
    let outage: { readonly until: number | undefined } | undefined

    const refuse = (
      reason: MetricsSink.ErrorReason,
      message: string,
      extra: { retryAfterMillis?: number; status?: number } = {}
    ) => {
      stats.refused++
      return Effect.fail(
        new MetricsSink.MetricsSinkError({
          sink: name,
          reason,
          message,
          status: extra.status ?? statusOf[reason],
          ...(extra.retryAfterMillis === undefined ? {} : { retryAfterMillis: extra.retryAfterMillis })
        })
      )
    }

    const submit = Effect.fn("MemoryMetricsIntake.submit")(function* (
      series: ReadonlyArray<MetricsSink.Series>
    ) {
      if (options.latency !== undefined) yield* Effect.sleep(yield* options.latency)
      stats.requests++
      const now = yield* Clock.currentTimeMillis
      if (outage !== undefined && (outage.until === undefined || now < outage.until)) {
        return yield* refuse("Unavailable", "503 Service Unavailable (outage)")
      }
      outage = undefined
      const fault = planned.shift()
      if (fault !== undefined) {
        return yield* refuse(fault.reason, `${fault.status ?? statusOf[fault.reason]} (injected)`, fault)
      }
      const points = MetricsSink.countPoints(series)
      if (points > limits.maxPointsPerPayload) {
        return yield* refuse(
          "TooLarge",
          `413: ${points} points; at most ${limits.maxPointsPerPayload} per payload`
        )
      }
      const body = Buffer.from(MetricsSink.encodeV2Payload(series), "utf8")
      if (body.byteLength > limits.maxUncompressedBytes) {
        return yield* refuse(
          "TooLarge",
          `413: ${body.byteLength} bytes decompressed; at most ${limits.maxUncompressedBytes}`
        )
      }
      const compressed = gzipSync(body).byteLength
      if (compressed > limits.maxCompressedBytes) {
        return yield* refuse(
          "TooLarge",
          `413: ${compressed} bytes compressed; at most ${limits.maxCompressedBytes}`
        )
      }
      stats.accepted++
      const nowSeconds = Math.floor(now / 1000)
      const warnings: Array<string> = []
      for (const s of series) {
        for (const p of s.points) {
          if (
            p.timestamp < nowSeconds - MetricsSink.acceptedWindow.pastSeconds ||
            p.timestamp > nowSeconds + MetricsSink.acceptedWindow.futureSeconds
          ) {
            stats.droppedOutsideWindow++
            warnings.push(`point of ${s.metric} at ${p.timestamp} is outside the accepted window`)
            continue
          }
          stats.points++
          accepted.push({
            metric: s.metric,
            kind: s.kind,
            tags: s.tags,
            timestamp: p.timestamp,
            value: p.value,
            acceptedAt: now
          })
        }
      }
      return { points, warnings }
    })

    return {
      name,
      limits,
      submit,
      points: Effect.sync(() => [...accepted]),
      stats: Effect.sync(() => ({ ...stats })),
      failNext: (count, reason, extra = {}) =>
        Effect.sync(() => {
          for (let i = 0; i < count; i++) planned.push({ reason, ...extra })
        }),
      startOutage: (window = {}) =>
        Effect.sync(() => {
          outage = { until: window.until }
        }),
      endOutage: Effect.sync(() => {
        outage = undefined
      }),
      clearFaults: Effect.sync(() => {
        outage = undefined
        planned.length = 0
      })
    } satisfies Handle
  })

/** The intake as a `MetricsSink` layer, with its control handle. */
export const layerMemory = (
  options: Options = {}
): Layer.Layer<MetricsSink.MetricsSink | MemoryMetricsIntake> =>
  Layer.effectContext(
    Effect.map(make(options), (handle) =>
      Context.make(MemoryMetricsIntake, handle).pipe(Context.add(MetricsSink.MetricsSink, handle))
    )
  )

/** Sums of accepted points per metric, tag set and timestamp: what a dashboard would show. */
export const totals = (points: ReadonlyArray<AcceptedPoint>): ReadonlyMap<string, number> => {
  const sums = new Map<string, number>()
  for (const p of points) {
    const key = `${p.metric}|${[...p.tags].sort().join(",")}|${p.timestamp}`
    sums.set(key, p.kind === "gauge" ? p.value : (sums.get(key) ?? 0) + p.value)
  }
  return sums
}
