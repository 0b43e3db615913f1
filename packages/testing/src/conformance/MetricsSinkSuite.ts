/**
 * The `MetricsSink` conformance suite: the contract every metrics sink keeps — the in-memory
 * intake, Datadog's API over HTTP (against a loopback intake in tests), a user's own — written
 * once. A sink runs `metricsSinkSuite` with a layer that builds it fresh for each test.
 *
 * Covered, always: a payload answered with its number of points; counts, rates and gauges with
 * their tags; an empty payload; a payload at the sink's own points limit accepted whole, one over
 * it refused whole with `TooLarge`, which no retry helps. With `accepted` (what the backend holds):
 * every point kept once, with its metric, tags and value, and nothing kept of a refused payload.
 * With `faults`: a 429 failing whole as `Throttled`, retryable, with the reset it named; a 5xx as
 * `Unavailable`, retryable; a 400 as `InvalidRequest`, not retryable; nothing kept of any of
 * them, and the same payload accepted once the fault clears.
 */
import { describe, expect } from "@effect/vitest"
import { MetricsSink } from "@spillway/core"
import { Clock, Context, Effect } from "effect"
import { register, registerWithFaults, type SuiteOptions } from "./Suite.js"

/** How a test makes the sink's backend fail. Every hook lasts until `clear`. */
export interface MetricsSinkFaultsService {
  /** The next `count` requests are answered with `reason` (429 naming a reset of `retryAfterMillis`, 5xx, 400). */
  readonly failNext: (
    count: number,
    reason: "Throttled" | "Unavailable" | "InvalidRequest",
    retryAfterMillis: number
  ) => Effect.Effect<void>
  readonly clear: Effect.Effect<void>
}

export class MetricsSinkFaults extends Context.Service<MetricsSinkFaults, MetricsSinkFaultsService>()(
  "spillway/conformance/MetricsSinkFaults"
) {}

/** A point as the backend holds it. */
export interface HeldPoint {
  readonly metric: string
  readonly tags: ReadonlyArray<string>
  readonly timestamp: number
  readonly value: number
}

type Read<A, R> = Effect.Effect<A, unknown, MetricsSink.MetricsSink | R>

export interface MetricsSinkSuiteOptions<R = never>
  extends SuiteOptions<void, MetricsSink.MetricsSink, MetricsSinkFaultsService, R> {
  /** Every point the backend accepted so far, in any order. */
  readonly accepted?: Read<ReadonlyArray<HeldPoint>, R> | undefined
}

const nowSeconds = Effect.map(Clock.currentTimeMillis, (ms) => Math.floor(ms / 1000))

const payload = (at: number, points: number, prefix = "suite"): ReadonlyArray<MetricsSink.Series> => [
  {
    metric: `${prefix}.events`,
    kind: "count",
    tags: ["event_type:page_view", "platform:web"],
    points: Array.from({ length: points }, (_, i) => ({ timestamp: at - (i % 600), value: i + 1 }))
  }
]

const mixed = (at: number): ReadonlyArray<MetricsSink.Series> => [
  { metric: "suite.count", kind: "count", tags: ["a:1"], points: [{ timestamp: at, value: 3 }] },
  {
    metric: "suite.rate",
    kind: "rate",
    tags: ["a:1", "b:é ✓"],
    points: [{ timestamp: at, value: 0.25 }],
    interval: 10
  },
  {
    metric: "suite.gauge",
    kind: "gauge",
    tags: [],
    points: [
      { timestamp: at - 60, value: -7.5 },
      { timestamp: at, value: 1e9 }
    ]
  }
]

const heldOf = (series: ReadonlyArray<MetricsSink.Series>): ReadonlyArray<HeldPoint> =>
  series.flatMap((s) =>
    s.points.map((p) => ({
      metric: s.metric,
      tags: [...s.tags].sort(),
      timestamp: p.timestamp,
      value: p.value
    }))
  )

const sorted = (points: ReadonlyArray<HeldPoint>) =>
  points
    .map((p) => ({ metric: p.metric, tags: [...p.tags].sort(), timestamp: p.timestamp, value: p.value }))
    .map((p) => JSON.stringify(p))
    .sort()

const submit = (series: ReadonlyArray<MetricsSink.Series>) =>
  MetricsSink.MetricsSink.use((sink) => sink.submit(series))

const failure = (series: ReadonlyArray<MetricsSink.Series>) => Effect.flip(submit(series))

/** Runs the suite against one sink. */
export const metricsSinkSuite = <R = never>(options: MetricsSinkSuiteOptions<R>): void => {
  type Body = Effect.Effect<void, unknown, MetricsSink.MetricsSink | R>
  const test = register(options)
  const run = (title: string, body: () => Body) => test(title, body, undefined)
  const testWithFaults = registerWithFaults(options)
  const runWithFaults = (title: string, body: (faults: MetricsSinkFaultsService) => Body) =>
    testWithFaults(title, body, undefined)
  const { accepted } = options

  describe(`MetricsSink conformance: ${options.name}`, () => {
    run("answers a payload with its number of points", () =>
      Effect.gen(function* () {
        const at = yield* nowSeconds
        expect((yield* submit(payload(at, 25))).points).toBe(25)
        expect((yield* submit(mixed(at))).points).toBe(4)
      })
    )

    run("answers an empty payload with no points", () =>
      Effect.gen(function* () {
        expect((yield* submit([])).points).toBe(0)
      })
    )

    run("accepts a payload at its points limit whole, and refuses one over it whole with TooLarge", () =>
      Effect.gen(function* () {
        const sink = yield* MetricsSink.MetricsSink
        const at = yield* nowSeconds
        const max = sink.limits.maxPointsPerPayload
        expect((yield* submit(payload(at, max, "limit"))).points).toBe(max)
        const error = yield* failure(payload(at, max + 1, "over"))
        expect(error._tag).toBe("MetricsSinkError")
        expect(error.reason).toBe("TooLarge")
        expect(error.isRetryable).toBe(false)
        if (accepted !== undefined) {
          expect((yield* accepted).filter((p) => p.metric === "over.events")).toEqual([])
        }
      })
    )

    if (accepted !== undefined) {
      run("keeps every point once, with its metric, tags and value", () =>
        Effect.gen(function* () {
          const at = yield* nowSeconds
          const series = [...payload(at, 40), ...mixed(at)]
          yield* submit(series)
          expect(sorted(yield* accepted)).toEqual(sorted(heldOf(series)))
        })
      )
    }

    runWithFaults(
      "fails a throttled payload whole as Throttled, retryable, naming the reset; then takes it once",
      (faults) =>
        Effect.gen(function* () {
          const at = yield* nowSeconds
          yield* faults.failNext(1, "Throttled", 3000)
          const error = yield* failure(payload(at, 5, "throttled"))
          expect(error.reason).toBe("Throttled")
          expect(error.isRetryable).toBe(true)
          expect(error.retryAfterMillis).toBe(3000)
          if (accepted !== undefined) expect(yield* accepted).toEqual([])
          yield* faults.clear
          expect((yield* submit(payload(at, 5, "throttled"))).points).toBe(5)
          if (accepted !== undefined) expect(yield* accepted).toHaveLength(5)
        })
    )

    runWithFaults(
      "fails a payload the intake answers 5xx as Unavailable, retryable, keeping nothing",
      (faults) =>
        Effect.gen(function* () {
          const at = yield* nowSeconds
          yield* faults.failNext(1, "Unavailable", 0)
          const error = yield* failure(payload(at, 5))
          expect(error.reason).toBe("Unavailable")
          expect(error.isRetryable).toBe(true)
          if (accepted !== undefined) expect(yield* accepted).toEqual([])
        })
    )

    runWithFaults(
      "fails a payload the intake refuses (400) as InvalidRequest, which no retry helps",
      (faults) =>
        Effect.gen(function* () {
          const at = yield* nowSeconds
          yield* faults.failNext(1, "InvalidRequest", 0)
          const error = yield* failure(payload(at, 5))
          expect(error.reason).toBe("InvalidRequest")
          expect(error.isRetryable).toBe(false)
        })
    )
  })
}
